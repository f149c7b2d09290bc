"""`simplane demo`: what a first-time user runs; always embedded SQLite, so once per session."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from collections import Counter

import httpx
from cli_helpers import free_port, free_udp_port, wait_for
from cli_helpers import token as issue_token


def demo_env() -> dict[str, str]:
    # The demo is embedded SQLite in its data folder whatever the environment points at; the
    # RADIUS ports are free ones, not 1812/1813 (other tests or a real server may hold those).
    return {"SIMPLANE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/not-the-demo",
            "SIMPLANE_RADIUS_AUTH_PORT": str(free_udp_port()),
            "SIMPLANE_RADIUS_ACCT_PORT": str(free_udp_port()),
            "SIMPLANE_RADIUS_DISCONNECT_PORT": str(free_udp_port())}


def attached(base_url: str, token: str) -> list[dict]:
    things = httpx.get(f"{base_url}/v1/things", headers={"Authorization": f"Bearer {token}"})
    assert things.status_code == 200, things.text
    return [t for t in things.json()["items"] if t["connection"]["status"] == "ATTACHED"]


def test_demo_prints_working_credentials_and_reuses_them(processes, tmp_path):  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "demo-data"
    port = free_port()
    env = demo_env()
    demo = processes(["demo", "--port", str(port), "--data-dir", str(data_dir)], env,
                     tmp_path / "demo.log")
    printed = "".join(demo.read_until(lambda line: "/v1/things" in line and "curl" in line))

    base_url = f"http://127.0.0.1:{port}"
    assert f"{base_url}/docs" in printed
    assert "coming" not in printed.lower()
    radius_line = next(line for line in printed.splitlines() if "RADIUS:" in line)
    assert env["SIMPLANE_RADIUS_AUTH_PORT"] in radius_line
    assert env["SIMPLANE_RADIUS_ACCT_PORT"] in radius_line
    assert "emulator:" in printed and "10 ACTIVE SIMs" in printed
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

    # The emulator attaches the ACTIVE SIMs over RADIUS in the background, soon after start.
    token = issue_token(base_url, client_id, client_secret)
    now_attached = wait_for(lambda: attached(base_url, token), "an attached Thing")
    assert all(t["state"] == "ACTIVE" and t["ip_address"] for t in now_attached)

    saved = json.loads((data_dir / "demo.json").read_text())
    assert (saved["client_id"], saved["client_secret"]) == (client_id, client_secret)
    assert stat.S_IMODE((data_dir / "demo.json").stat().st_mode) == 0o600
    demo.terminate()

    # A second run reuses the same account and credentials instead of creating another.
    port = free_port()
    again = processes(["demo", "--port", str(port), "--data-dir", str(data_dir), "--json"],
                      env, tmp_path / "demo-again.log")
    info = json.loads(again.read_until(lambda line: line.startswith("{"))[-1])
    assert info["reused"] is True
    assert (info["client_id"], info["account_id"]) == (client_id, saved["account_id"])
    assert info["sims"] == {"ACTIVE": 10, "PROVISIONED": 10}
    assert info["radius"]["auth_port"] == int(env["SIMPLANE_RADIUS_AUTH_PORT"])
    assert info["emulator"] == {"rate": 2.0, "things": 10}
    again.wait_ready(info["url"])
    token = httpx.post(f"{info['url']}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(client_id, client_secret))
    assert token.status_code == 200, token.text
    things = httpx.get(f"{info['url']}/v1/things",
                       headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert len(things.json()["items"]) == 20
    again.terminate()
