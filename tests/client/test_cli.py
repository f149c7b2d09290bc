"""simplane-cli in-process (CliRunner) against the live server: tables, JSON, exit codes."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from decimal import Decimal

import pytest
import typer.main
import typer.testing
from clientkit import credential
from typer.testing import CliRunner, Result

from simplane.customer_cli.main import app

# Typer rebuilds the whole command tree on every invoke (~130 ms, more than the HTTP calls of
# a command); a real `simplane-cli` process builds it once too, so build it once here.
_COMMAND = typer.main.get_command(app)


class Cli:
    def __init__(self, config_dir: str) -> None:
        self.env = {"SIMPLANE_CONFIG_DIR": config_dir, "SIMPLANE_PROFILE": None,
                    "SIMPLANE_URL": None, "SIMPLANE_CLIENT_ID": None,
                    "SIMPLANE_CLIENT_SECRET": None, "COLUMNS": "240"}

    def __call__(self, *args: str, **env: str | None) -> Result:
        build = typer.testing._get_command
        typer.testing._get_command = lambda _app: _COMMAND  # for this call only
        try:
            return CliRunner().invoke(app, list(args), env={**self.env, **env})
        finally:
            typer.testing._get_command = build

    def ok(self, *args: str, **env: str | None) -> Result:
        result = self(*args, **env)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **env: str | None):  # type: ignore[no-untyped-def]
        return json.loads(self.ok(*args, "--json", **env).stdout)

    def fails(self, code: int, *args: str, **env: str | None) -> str:
        """The one error line of a command that must fail with `code`."""
        result = self(*args, **env)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0]


@pytest.fixture
def cli(tmp_path, server, tenant) -> Cli:  # type: ignore[no-untyped-def]
    runner = Cli(str(tmp_path / "config"))
    runner.ok("login", "--url", server.base_url, "--client-id", tenant.client_id,
              "--client-secret", tenant.client_secret)
    return runner


def test_login_saves_a_private_profile(tmp_path, server, tenant):
    cli = Cli(str(tmp_path / "cfg"))
    result = cli.ok("--profile", "work", "login", "--url", server.base_url,
                    "--client-id", tenant.client_id, input=None,
                    SIMPLANE_CLIENT_SECRET=tenant.client_secret)
    assert "logged in to" in result.stderr and "(admin)" in result.stderr
    path = tmp_path / "cfg" / "credentials.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    saved = json.loads(path.read_text())["profiles"]["work"]
    assert saved == {"base_url": server.base_url, "client_id": tenant.client_id,
                     "client_secret": tenant.client_secret}
    assert [p["profile"] for p in cli.json("profiles")] == ["work"]
    me = cli.json("--profile", "work", "whoami")
    assert me["role"] == "admin" and me["client_id"] == tenant.client_id
    assert tenant.client_id in cli.ok("whoami", SIMPLANE_PROFILE="work").stdout

    assert "no credentials for profile 'default'" in cli.fails(3, "things", "list")
    line = cli.fails(3, "login", "--url", server.base_url, "--client-id", tenant.client_id,
                     "--client-secret", "wrong")
    assert line.startswith("error: 401 invalid_client: ")
    cli.ok("--profile", "work", "logout")
    assert cli.json("profiles") == []


def test_the_access_token_is_kept_between_runs(cli, tenant, tmp_path):
    cli.ok("whoami")
    path = tmp_path / "config" / "tokens.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    kept = json.loads(path.read_text())
    (key,) = kept
    assert tenant.client_id in key and kept[key]["expires_at"] > time.time() + 3000

    def keep(token: str) -> None:
        path.write_text(json.dumps({key: {**kept[key], "access_token": token}}))

    # Another user's valid token in the file: the next run uses it without asking for one.
    _, viewer_id, viewer_secret = credential(tenant, "viewer")
    keep(tenant.token(viewer_id, viewer_secret))
    assert cli.json("whoami")["role"] == "viewer"
    # A token the server refuses: one 401, a new token, kept for the next run.
    keep("refused.token")
    assert cli.json("whoami")["role"] == "admin"
    renewed = json.loads(path.read_text())[key]["access_token"]
    assert renewed != "refused.token"
    cli.ok("logout")
    assert json.loads(path.read_text()) == {}


def test_things_tables_json_and_paging(cli, tenant):
    things = tenant.things(3)
    ids = [t["id"] for t in things]
    table = cli.ok("things", "list").stdout
    assert table.splitlines()[0].split() == ["ID", "ICCID", "NAME", "STATE", "GROUP", "IP",
                                             "CONNECTION", "TAGS"]
    assert [line.split()[0] for line in table.splitlines()[1:]] == ids
    assert all("PROVISIONED" in line for line in table.splitlines()[1:])
    assert [t["id"] for t in cli.json("things", "list")] == ids
    jsonl = cli.ok("things", "list", "--jsonl").stdout.splitlines()
    assert [json.loads(line)["iccid"] for line in jsonl] == [t["iccid"] for t in things]

    page = cli.ok("things", "list", "--limit", "2", "--json")
    assert [t["id"] for t in json.loads(page.stdout)] == ids[:2]
    assert "more results: --cursor " in page.stderr
    assert [t["id"] for t in cli.json("things", "list", "--limit", "2", "--all")] == ids
    assert cli.json("things", "list", "--state", "ACTIVE") == []
    assert "no Things" in cli.ok("things", "list", "--state", "ACTIVE").stderr


def test_thing_lifecycle_and_exit_codes(cli, tenant):
    thing = tenant.things(1)[0]
    detail = cli.ok("things", "get", thing["id"]).stdout
    assert f"iccid       {thing['iccid']}" in detail or thing["iccid"] in detail
    assert "state" in detail and "PROVISIONED" in detail
    assert cli.json("things", "get", thing["iccid"])["id"] == thing["id"]
    assert cli.json("things", "lookup", "--imsi", thing["imsi"])["id"] == thing["id"]

    activated = cli.ok("things", "activate", thing["id"]).stdout
    assert thing["id"] in activated and "ACTIVE" in activated
    assert cli.json("things", "suspend", thing["id"])[0]["state"] == "SUSPENDED"
    assert cli.json("things", "tag", thing["id"], "fleet", "nl")["tags"] == ["fleet", "nl"]
    assert cli.json("things", "tag", thing["id"], "nl", "--remove")["tags"] == ["fleet"]
    assert cli.json("things", "retire", thing["id"], "--yes")[0]["state"] == "RETIRED"

    line = cli.fails(1, "things", "activate", thing["id"])
    assert line.startswith("error: 412 invalid_state_transition: ") and "RETIRED" in line
    error = json.loads(cli("things", "activate", thing["id"], "--json").stderr)
    assert (error["status"], error["code"], error["exit_code"]) == (
        412, "invalid_state_transition", 1)
    assert cli.fails(4, "things", "get", "thg_nope").startswith("error: 404 not_found: ")
    assert cli.fails(4, "things", "lookup", "--iccid", "8931000000000000001")
    assert "400 validation_error" in cli.fails(1, "things", "list", "--state", "BROKEN")
    assert "exactly one of" in cli.fails(2, "things", "lookup")
    assert "No such command" in cli.fails(2, "things", "explode")
    assert cli.fails(2, "things", "list", "--limit", "0")


def test_a_viewer_is_refused_with_exit_code_3(cli, tenant):
    thing = tenant.things(1)[0]
    _, client_id, secret = credential(tenant, "viewer")
    env = {"SIMPLANE_CLIENT_ID": client_id, "SIMPLANE_CLIENT_SECRET": secret}
    assert cli.json("things", "get", thing["id"], **env)["state"] == "PROVISIONED"
    assert "403" in cli.fails(3, "things", "activate", thing["id"], **env)


def test_groups_networks_nat_and_vpn(cli, tenant):
    groups = cli.json("groups", "list")
    assert [g["is_default"] for g in groups] == [True]
    made = cli.json("groups", "create", "sensors", "--description", "field")
    assert made["name"] == "sensors" and made["network_id"] == groups[0]["network_id"]
    listing = cli.ok("groups", "list").stdout
    assert made["id"] in listing and "sensors" in listing
    assert "sensors" in cli.ok("groups", "get", made["id"]).stdout

    network = cli.json("networks", "list")[0]
    shown = cli.ok("networks", "get", network["id"]).stdout
    assert network["ip_pools"][0]["cidr"] in shown and "nat public ip" in shown
    assert cli.json("networks", "get", network["id"])["id"] == network["id"]

    thing = tenant.things(1)[0]
    locked = cli.json("things", "lock-ip", thing["id"])
    assert locked["ip_locked"] is True
    rule = cli.json("networks", "nat", "add", network["id"], "--thing", thing["id"],
                    "--public-port", "8022", "--private-port", "22")
    assert (rule["public_port"], rule["private_port"], rule["protocol"]) == (8022, 22, "TCP")
    assert f"{rule['public_ip']}:8022" in cli.ok("networks", "nat", "list", network["id"]).stdout
    line = cli.fails(1, "networks", "nat", "add", network["id"], "--thing", thing["id"],
                     "--public-port", "8022", "--private-port", "23")
    assert "412 conflict" in line

    tunnel = cli.json("networks", "vpn", "add", network["id"], "--name", "hq",
                      "--remote-gateway", "8.8.4.4", "--remote-subnet", "172.16.0.0/24",
                      SIMPLANE_VPN_PSK="a-very-long-pre-shared-key")
    assert tunnel["remote_subnets"] == ["172.16.0.0/24"] and "psk" not in tunnel
    assert "hq" in cli.ok("networks", "vpn", "list", network["id"]).stdout
    config = cli.ok("networks", "vpn", "peer-config", network["id"], tunnel["id"]).stdout
    assert "8.8.4.4" in config and "172.16.0.0/24" in config

    trace = cli.ok("trace", network["id"], "--direction", "OUTBOUND", "--protocol", "TCP",
                   "--source-ip", locked["ip_address"], "--source-port", "40000",
                   "--destination-ip", "172.16.0.5", "--destination-port", "443").stdout
    assert "verdict" in trace and "STAGE" in trace
    assert cli.json("trace", network["id"], "--direction", "OUTBOUND", "--protocol", "UDP",
                    "--source-ip", locked["ip_address"], "--source-port", "5353",
                    "--destination-ip", "9.9.9.9", "--destination-port", "53")["verdict"] == "ALLOW"


def test_ip_profiles_rules_and_evaluate(cli):
    profile = cli.json("ip-profiles", "create", "strict", "--outbound-default", "DENY")
    assert profile["outbound"]["default_action"] == "DENY"
    assert "strict" in cli.ok("ip-profiles", "list").stdout
    rule = cli.json("ip-profiles", "rules", "add", profile["id"], "--chain", "outbound",
                    "--action", "allow", "--protocol", "tcp", "--remote", "198.51.100.0/24",
                    "--ports", "443", "--description", "back end")
    assert (rule["chain"], rule["position"], rule["ports"]) == ("OUTBOUND", 1, "443")
    listed = cli.ok("ip-profiles", "rules", "list", profile["id"]).stdout
    assert rule["id"] in listed and "198.51.100.0/24" in listed
    assert rule["id"] in cli.ok("ip-profiles", "get", profile["id"]).stdout
    verdict = cli.json("ip-profiles", "evaluate", profile["id"], "--direction", "OUTBOUND",
                       "--protocol", "TCP", "--remote-ip", "198.51.100.9", "--port", "443")
    assert verdict == {"action": "ALLOW", "rule_id": rule["id"]}
    table = cli.ok("ip-profiles", "evaluate", profile["id"], "--direction", "OUTBOUND",
                   "--protocol", "TCP", "--remote-ip", "203.0.113.1", "--port", "80").stdout
    assert "DENY" in table and "(default action)" in table
    assert "400 validation_error" in cli.fails(
        1, "ip-profiles", "rules", "add", profile["id"], "--chain", "OUTBOUND",
        "--action", "ALLOW", "--protocol", "ICMP", "--ports", "80")


def test_sms(cli, tenant):
    thing = tenant.things(1)[0]
    line = cli.fails(1, "sms", "send", thing["id"], "reboot")
    assert "412 sms_not_allowed" in line  # PROVISIONED Things get no SMS
    cli.ok("things", "activate", thing["id"])
    sent = cli.json("sms", "send", thing["id"], "reboot")
    assert (sent["status"], sent["encoding"], sent["segments"]) == ("QUEUED", "GSM7", 1)
    table = cli.ok("sms", "list", "--thing", thing["id"]).stdout
    assert sent["id"] in table and "reboot" in table and "QUEUED" in table
    assert cli.json("sms", "get", sent["id"])["text"] == "reboot"
    assert "either TEXT or --binary" in cli.fails(2, "sms", "send", thing["id"])


def test_billing_report(tmp_path, server, new_tenant):
    tenant = new_tenant(currency="EUR", monthly_fee=Decimal("2.00"), price_per_mb=Decimal("0.01"),
                        price_per_sms_mt=Decimal("0.05"), price_per_sms_mo=Decimal("0.02"))
    cli = Cli(str(tmp_path / "config"))
    cli.ok("login", "--url", server.base_url, "--client-id", tenant.client_id,
           "--client-secret", tenant.client_secret)
    things = tenant.things(3)
    for thing in things:
        cli.ok("things", "activate", thing["id"])
    table = cli.ok("billing", "report").stdout
    assert "6.00 EUR" in table and "THING" in table
    assert all(t["id"] in table for t in things)
    report = cli.json("billing", "report")
    assert report["totals"]["total"] == "6.00" and report["status"] == "OPEN"
    page = cli.ok("billing", "report", "--limit", "2", "--json")
    assert len(json.loads(page.stdout)["lines"]["items"]) == 2
    everything = cli.json("billing", "report", "--limit", "2", "--all")
    assert sorted(x["thing_id"] for x in everything["lines"]["items"]) == sorted(
        t["id"] for t in things)
    csv_lines = cli.ok("billing", "report", "--period", report["period"], "--csv").stdout
    assert csv_lines.splitlines()[0].startswith("thing_id") and len(csv_lines.splitlines()) == 4
    assert Decimal(cli.json("billing", "tariff")["monthly_fee"]) == Decimal("2.00")
    assert "is not YYYY-MM" in cli.fails(2, "billing", "report", "--period", "2024-1")
    assert "400" in cli.fails(1, "billing", "report", "--period", "2024-13")


def test_bulk_run_waits_with_progress(cli, tenant, bulk_worker):
    things = tenant.things(3)
    for thing in things:
        cli.ok("things", "tag", thing["id"], "batch")
    dry = cli.json("bulk", "run", "activate", "--tag", "batch", "--dry-run")
    assert dry["total"] == 3 and dry["dry_run"] is True
    done = cli.ok("bulk", "run", "ACTIVATE", "--tag", "batch", "--wait", "--interval", "0.05")
    assert "3/3" in done.stderr  # the progress bar, fed by the job's counts
    assert "COMPLETED" in done.stdout and "succeeded" in done.stdout
    assert cli.json("things", "list", "--tag", "batch", "--state", "ACTIVE").__len__() == 3

    cli.ok("things", "retire", things[0]["id"], "--yes")
    result = cli("bulk", "run", "SUSPEND", "--tag", "batch", "--wait", "--interval", "0.05",
                 "--json")
    assert result.exit_code == 1, result.stderr  # a Thing failed: scripts must notice
    job = json.loads(result.stdout)
    assert (job["status"], job["succeeded"], job["failed"]) == ("COMPLETED", 2, 1)
    failed = cli.json("bulk", "items", job["id"], "--failed")
    assert [(i["thing_id"], i["code"]) for i in failed] == [
        (things[0]["id"], "invalid_state_transition")]
    assert job["id"] in cli.ok("bulk", "list").stdout
    assert "exactly one target" in cli.fails(2, "bulk", "run", "ACTIVATE")


def test_events_tail_and_follow(cli, tenant):
    thing = tenant.things(1)[0]
    cli.ok("things", "activate", thing["id"])
    table = cli.ok("events", "tail", "--thing", thing["id"]).stdout
    assert "thing.state_changed" in table and thing["id"] in table
    assert [e["type"] for e in cli.json("events", "tail", "--thing", thing["id"])] == [
        "thing.state_changed"]

    def later() -> None:
        time.sleep(0.3)
        tenant.admin.patch(f"/v1/things/{thing['id']}", json={"state": "SUSPENDED"})

    worker = threading.Thread(target=later)
    worker.start()
    followed = cli.ok("events", "tail", "--thing", thing["id"], "--follow", "--count", "2",
                      "--interval", "0.05", "--jsonl")
    worker.join()
    seen = [json.loads(line) for line in followed.stdout.splitlines()]
    assert [e["data"]["to"] for e in seen] == ["ACTIVE", "SUSPENDED"]
    assert "neither RFC 3339" in cli.fails(2, "events", "tail", "--since", "yesterday")


def test_429_is_retried(cli, limited_server):
    first = cli.ok("--url", limited_server, "groups", "list")
    second = cli.ok("--url", limited_server, "groups", "list")
    assert first.stdout == second.stdout
    assert "rate limited (HTTP 429); retrying in 1 s (attempt 1)" in second.stderr
    line = cli.fails(5, "--url", limited_server, "--max-retries", "0", "groups", "list")
    assert line.startswith("error: 429 rate_limited: ")


def test_server_and_network_errors_exit_5(cli, backend, serve):
    from test_errors import _broken_database

    from simplane.app import create_app

    database = _broken_database(backend)
    url = serve(create_app(backend.settings, database))
    line = cli.fails(5, "--url", url, "--max-retries", "0", "things", "list")
    assert "503 service_unavailable" in line
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert "ConnectError" in cli.fails(5, "--url", f"http://127.0.0.1:{port}", "--max-retries",
                                       "0", "whoami")
    database.dispose()
