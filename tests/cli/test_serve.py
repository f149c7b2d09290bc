"""`simplane serve --workers 2` as a real process tree, on each engine."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from pathlib import Path

from cli_helpers import child_pids, free_port, one_line_error, serving_pid

# Loose enough that the loop below is never throttled; the limits have their own tests.
NO_THROTTLE = {"SIMPLANE_RATE_LIMIT_PER_SECOND": "100000", "SIMPLANE_RATE_LIMIT_BURST": "100000",
               "SIMPLANE_TOKEN_RATE_LIMIT_PER_MINUTE": "100000"}


def request(connection: http.client.HTTPConnection, method: str, path: str, *,
            body: str | None = None, headers: dict[str, str]) -> tuple[int, dict]:
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")


def test_two_workers_share_migrations_settings_and_tokens(  # type: ignore[no-untyped-def]
        cli, processes, empty_database_url, tmp_path):
    port = free_port()
    # The workers must take the database from the flag, not from this decoy in their
    # environment; the secret key is generated once into the data folder for both.
    env = {**NO_THROTTLE, "SIMPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'decoy.db'}",
           "SIMPLANE_DATA_DIR": str(tmp_path / "data")}
    env.pop("SIMPLANE_SECRET_KEY", None)
    server = processes(["--database-url", empty_database_url, "serve", "--port", str(port),
                        "--workers", "2"], env, tmp_path / "serve.log")
    base_url = f"http://127.0.0.1:{port}"
    server.wait_ready(base_url)

    # Only a migrated database accepts accounts: serve applied the migrations.
    created = cli("accounts", "create", "--name", "Workers", "--admin-email",
                  "workers@example.com", "--json", SIMPLANE_DATABASE_URL=empty_database_url)
    assert created.exit_code == 0, created.output
    account = json.loads(created.stdout)
    shipped = cli("sims", "generate", "--account", account["account_id"], "--count", "3",
                  SIMPLANE_DATABASE_URL=empty_database_url)
    assert shipped.exit_code == 0, shipped.output

    basic = base64.b64encode(f"{account['client_id']}:{account['client_secret']}".encode())
    token_headers = {"Authorization": f"Basic {basic.decode()}",
                     "Content-Type": "application/x-www-form-urlencoded"}
    workers = child_pids(server.popen.pid)
    served_by: dict[int, int] = {}
    previous_token = None
    # Each connection lands on whichever worker accepts it; a token issued by one worker is
    # then used on the next connection, so tokens cross between the processes.
    for _ in range(300):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            status, ready = request(connection, "GET", "/readyz", headers={})
            assert (status, ready) == (200, {"status": "ready"})
            status, issued = request(connection, "POST", "/v1/oauth2/token",
                                     body="grant_type=client_credentials", headers=token_headers)
            assert status == 200, issued
            bearer = previous_token or issued["access_token"]
            status, things = request(connection, "GET", "/v1/things",
                                     headers={"Authorization": f"Bearer {bearer}"})
            assert status == 200, things
            assert len(things["items"]) == 3
            pid = serving_pid(connection, port, workers)
        finally:
            connection.close()
        served_by[pid] = served_by.get(pid, 0) + 1
        previous_token = issued["access_token"]
        if len(served_by) == 2 and sum(served_by.values()) >= 10:
            break
    assert len(served_by) == 2, f"one worker served everything: {served_by}"

    server.terminate()
    assert server.popen.returncode == 0
    assert not [pid for pid in served_by if Path(f"/proc/{pid}").exists()]


def test_serve_refuses_a_taken_port_in_one_line(cli, processes, tmp_path):  # type: ignore[no-untyped-def]
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = cli("serve", "--port", str(port))
    assert f"127.0.0.1:{port}" in one_line_error(result)


def test_serve_refuses_a_bad_worker_count(cli):  # type: ignore[no-untyped-def]
    result = cli("serve", "--workers", "0")
    assert "--workers" in one_line_error(result) and result.exit_code == 2
