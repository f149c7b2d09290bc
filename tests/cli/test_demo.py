"""`simplane demo`: what a first-time user runs; always embedded SQLite, so once per session."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from collections import Counter

import httpx
from cli_helpers import free_port


def demo_env() -> dict[str, str]:
    # The demo is embedded SQLite in its data folder whatever the environment points at.
    return {"SIMPLANE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/not-the-demo"}


def test_demo_prints_working_credentials_and_reuses_them(processes, tmp_path):  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "demo-data"
    port = free_port()
    demo = processes(["demo", "--port", str(port), "--data-dir", str(data_dir)], demo_env(),
                     tmp_path / "demo.log")
    printed = "".join(demo.read_until(lambda line: "/v1/things" in line and "curl" in line))

    base_url = f"http://127.0.0.1:{port}"
    assert f"{base_url}/docs" in printed
    assert "coming" in printed.lower()
    client_id = re.search(r"client id:\s+(\S+)", printed).group(1)
    client_secret = re.search(r"client secret:\s+(\S+)", printed).group(1)
    token_line = next(line.strip() for line in printed.splitlines() if "oauth2/token" in line)
    things_line = next(line.strip() for line in printed.splitlines()
                       if line.strip().startswith("curl") and "/v1/things" in line)
    demo.wait_ready(base_url)

    # The printed lines are what the user pastes into a shell: run them as they are.
    shell = subprocess.run(["sh", "-c", f"{token_line}\n{things_line}"], capture_output=True,
                           text=True, timeout=60)
    assert shell.returncode == 0, shell.stderr
    listed = json.loads(shell.stdout)["items"]
    assert len(listed) == 20
    assert Counter(t["state"] for t in listed) == {"ACTIVE": 10, "PROVISIONED": 10}

    saved = json.loads((data_dir / "demo.json").read_text())
    assert (saved["client_id"], saved["client_secret"]) == (client_id, client_secret)
    assert stat.S_IMODE((data_dir / "demo.json").stat().st_mode) == 0o600
    demo.terminate()

    # A second run reuses the same account and credentials instead of creating another.
    port = free_port()
    again = processes(["demo", "--port", str(port), "--data-dir", str(data_dir), "--json"],
                      demo_env(), tmp_path / "demo-again.log")
    info = json.loads(again.read_until(lambda line: line.startswith("{"))[-1])
    assert info["reused"] is True
    assert (info["client_id"], info["account_id"]) == (client_id, saved["account_id"])
    assert info["sims"] == {"ACTIVE": 10, "PROVISIONED": 10}
    again.wait_ready(info["url"])
    token = httpx.post(f"{info['url']}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(client_id, client_secret))
    assert token.status_code == 200, token.text
    things = httpx.get(f"{info['url']}/v1/things",
                       headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert len(things.json()["items"]) == 20
    again.terminate()
