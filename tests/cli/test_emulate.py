"""`simplane emulate`: a packet gateway over real RADIUS against a running server, checked
through the customer API."""

from __future__ import annotations

import json
import signal
import stat

from cli_helpers import LossyUdpProxy, cli_env, one_line_error, wait_for


def activate(tenant, count: int) -> list[dict]:  # type: ignore[no-untyped-def]
    things = tenant.things(count)
    for thing in things:
        response = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE"})
        assert response.status_code == 200, response.text
    return things


def usage_total(client, thing_id: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    response = client.get(f"/v1/things/{thing_id}/usage")
    assert response.status_code == 200, response.text
    days = response.json()["items"]
    return sum(d["bytes_up"] for d in days), sum(d["bytes_down"] for d in days)


def get(client, path: str, **params: str) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_emulate_attaches_counts_usage_and_sends_mo_sms(  # type: ignore[no-untyped-def]
        cli, radius_server, radius_tenant, tmp_path):
    client = radius_tenant.admin
    active = activate(radius_tenant, 3)
    (idle,) = radius_tenant.things(1)  # PROVISIONED: never emulated

    result = cli("emulate", "--account", radius_tenant.account_id, "--things", "5", "--rate",
                 "20", "--duration", "3", "--seed", "7", *radius_server.emulate_args(), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["things"] == 3
    assert summary["attaches"] >= 3 and summary["accounting"]["start"] == summary["attaches"]
    assert set(summary["rejects"]) <= {"roaming_not_allowed"}
    assert summary["timeouts"] == 0
    assert summary["sms"]["sent"] >= 1 and summary["sms"]["failed"] == 0

    # Every byte the gateway reported was counted once: nothing lost, nothing doubled.
    totals = [usage_total(client, thing["id"]) for thing in active]
    assert sum(up for up, _ in totals) == summary["bytes_up"] > 0
    assert sum(down for _, down in totals) == summary["bytes_down"] > 0
    attached = 0
    for thing in active:
        shown = client.get(f"/v1/things/{thing['id']}").json()
        sessions = get(client, f"/v1/things/{thing['id']}/sessions")
        assert sessions and all(s["nas_address"] == "127.0.0.1" for s in sessions)
        assert all(s["country"] in ("NL", "BE", "LU") for s in sessions)
        assert shown["ip_address"] and shown["imei"]
        assert get(client, f"/v1/things/{thing['id']}/imei-history")
        assert get(client, "/v1/events", type="thing.attached", thing_id=thing["id"])
        if shown["connection"]["status"] == "ATTACHED":
            attached += 1
            (open_session,) = [s for s in sessions if s["status"] == "OPEN"]
            assert open_session["id"] == shown["connection"]["session_id"]
            assert open_session["ip_address"] == shown["ip_address"]
    assert attached == summary["attached_at_end"]
    assert client.get(f"/v1/things/{idle['id']}").json()["connection"]["status"] == "NEVER"

    mo = [m for m in get(client, "/v1/sms", limit="100") if m["direction"] == "MO"]
    assert len(mo) == summary["sms"]["sent"]
    assert {m["thing_id"] for m in mo} <= {t["id"] for t in active}
    assert all(m["status"] == "RECEIVED" and m["text"] for m in mo)
    # The emulator's own network credential, kept private for the next run.
    credential_file = tmp_path / "emulator-network-credential.json"
    credential = json.loads(credential_file.read_text())
    assert credential["client_id"].startswith("net_")
    assert stat.S_IMODE(credential_file.stat().st_mode) == 0o600

    # A second run resumes the open sessions (same Acct-Session-Id, counters continuing) and,
    # with --detach-on-exit, ends every one of them.
    again = cli("emulate", "--account", radius_tenant.account_id, "--rate", "20", "--duration",
                "1", *radius_server.emulate_args(), "--detach-on-exit", "--json")
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["resumed_sessions"] == attached
    assert second["attached_at_end"] == 0
    totals = [usage_total(client, thing["id"]) for thing in active]
    assert sum(up for up, _ in totals) == summary["bytes_up"] + second["bytes_up"]
    for thing in active:
        assert client.get(f"/v1/things/{thing['id']}").json()["connection"]["status"] == \
            "DETACHED"
        assert all(s["status"] == "CLOSED"
                   for s in get(client, f"/v1/things/{thing['id']}/sessions"))
    assert json.loads(credential_file.read_text()) == credential


def test_emulate_answers_a_disconnect_and_stops_on_ctrl_c(  # type: ignore[no-untyped-def]
        backend, radius_server, radius_tenant, processes, tmp_path):
    client = radius_tenant.admin
    (thing,) = activate(radius_tenant, 1)
    emulator = processes(["emulate", "--account", radius_tenant.account_id, "--rate", "4",
                          "--no-sms", *radius_server.emulate_args(), "--json"],
                         cli_env(backend.settings.database_url, tmp_path), tmp_path / "emu.log")

    def disconnected() -> dict | None:
        # The device may detach by itself just as it is suspended; then it is tried again.
        wait_for(lambda: client.get(f"/v1/things/{thing['id']}").json()["connection"]["status"]
                 == "ATTACHED", "the Thing to attach")
        response = client.patch(f"/v1/things/{thing['id']}", json={"state": "SUSPENDED"})
        assert response.status_code == 200, response.text
        wait_for(lambda: all(s["status"] == "CLOSED"
                             for s in get(client, f"/v1/things/{thing['id']}/sessions")),
                 "the session to close")
        ended = get(client, f"/v1/things/{thing['id']}/sessions")
        found = [s for s in ended if s["terminate_cause"] == "admin_reset"]
        if not found:
            response = client.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE"})
            assert response.status_code == 200, response.text
        return found[0] if found else None

    session = next(filter(None, (disconnected() for _ in range(3))), None)
    assert session is not None, emulator.stderr()
    assert (session["disconnect"]["status"], session["disconnect"]["reason"]) == \
        ("ACKED", "suspended")
    assert client.get(f"/v1/things/{thing['id']}").json()["connection"]["status"] == "DETACHED"

    emulator.popen.send_signal(signal.SIGINT)
    assert emulator.popen.wait(timeout=30) == 0, emulator.stderr()
    summary = json.loads(emulator.read_until(lambda line: line.startswith("{"))[-1])
    assert summary["disconnects"] >= 1
    assert summary["accounting"]["stop"] >= summary["disconnects"]


def test_emulate_needs_active_things_and_an_answering_server(  # type: ignore[no-untyped-def]
        cli, radius_server, radius_tenant):
    radius_tenant.things(2)
    result = cli("emulate", "--account", radius_tenant.account_id, "--duration", "1",
                 *radius_server.emulate_args())
    assert "no ACTIVE Things" in one_line_error(result)

    activate(radius_tenant, 1)
    result = cli("emulate", "--account", radius_tenant.account_id, "--duration", "5",
                 "--timeout", "0.1", "--retries", "1", "--no-sms",
                 *radius_server.emulate_args(secret="not-the-secret"), "--json")
    line = json.loads(one_line_error(result))["error"]
    assert "no answer from the RADIUS server" in line and "secret" in line

    result = cli("emulate", "--account", "acc_nope", "--duration", "1",
                 *radius_server.emulate_args())
    assert "acc_nope" in one_line_error(result)


def test_emulate_takes_the_server_and_secret_from_the_settings(  # type: ignore[no-untyped-def]
        cli, radius_server, radius_tenant):
    activate(radius_tenant, 1)
    settings = radius_server.settings
    env = {"SIMPLANE_RADIUS_BIND": "0.0.0.0",  # a wildcard bind is reached on loopback
           "SIMPLANE_RADIUS_AUTH_PORT": str(settings.radius_auth_port),
           "SIMPLANE_RADIUS_ACCT_PORT": str(settings.radius_acct_port),
           "SIMPLANE_RADIUS_DISCONNECT_PORT": str(settings.radius_disconnect_port),
           "SIMPLANE_RADIUS_CLIENTS": "10.0.0.0/8=other,127.0.0.1/32=testing123"}
    result = cli("emulate", "--account", radius_tenant.account_id, "--duration", "0.5",
                 "--seed", "1", "--no-sms", "--json", **env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["attaches"] >= 1 and summary["timeouts"] == 0

    result = cli("emulate", "--account", radius_tenant.account_id, "--duration", "0.5",
                 **{**env, "SIMPLANE_RADIUS_CLIENTS": "10.0.0.0/8=other"})
    assert "no secret for this NAS address 127.0.0.1" in one_line_error(result)
    assert result.exit_code == 2


def test_unanswered_requests_are_retransmitted_byte_for_byte_and_counted_once(  # type: ignore[no-untyped-def]
        cli, radius_server, radius_tenant):
    client = radius_tenant.admin
    (thing,) = activate(radius_tenant, 1)
    settings = radius_server.settings
    proxy = LossyUdpProxy(settings.radius_auth_port, settings.radius_acct_port)
    try:
        result = cli("emulate", "--account", radius_tenant.account_id, "--rate", "10",
                     "--duration", "2", "--seed", "3", "--timeout", "0.4", "--retries", "2",
                     "--no-sms", "--server-host", "127.0.0.1", "--auth-port", str(proxy.ports[0]),
                     "--acct-port", str(proxy.ports[1]), "--secret", "testing123",
                     "--disconnect-port", "0", "--json")
    finally:
        proxy.close()
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    requests = summary["access_requests"] + sum(summary["accounting"].values())
    assert requests >= 3 and summary["timeouts"] == 0
    # Every request went out twice as the very same datagram, and the first copy was lost.
    assert summary["retransmissions"] == requests
    assert sorted(proxy.copies.values()) == [2] * requests
    up, down = usage_total(client, thing["id"])
    assert (up, down) == (summary["bytes_up"], summary["bytes_down"])
