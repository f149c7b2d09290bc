"""Configuration errors stop a command with one line; `simplane db upgrade`."""

from __future__ import annotations

import json
import subprocess

import pytest
from cli_helpers import SIMPLANE, inherited_env, one_line_error


@pytest.mark.parametrize("name, value", [
    ("SIMPLANE_RATE_LIMIT_BURST", "lots"),
    ("SIMPLANE_ACCOUNT_IP_SPACE", "10.64.0.1/10"),
    ("SIMPLANE_TOKEN_TTL_SECONDS", "5"),
    ("SIMPLANE_REQUEST_CONCURRENCY", "0"),
    ("SIMPLANE_DATABASE_URL", "mysql://localhost/simplane"),
])
def test_a_bad_setting_is_one_line_naming_it(cli, name, value):  # type: ignore[no-untyped-def]
    result = cli("accounts", "list", **{name: value})
    assert name in one_line_error(result)
    assert result.exit_code == 2


def test_the_installed_command_reports_bad_config_in_one_line(tmp_path):  # type: ignore[no-untyped-def]
    env = {**inherited_env(), "SIMPLANE_VPN_GATEWAY_IP": "not-an-ip"}
    done = subprocess.run([str(SIMPLANE), "db", "upgrade"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "SIMPLANE_VPN_GATEWAY_IP" in line and "not-an-ip" in line


def test_database_url_flag_overrides_the_environment(cli, tmp_path):  # type: ignore[no-untyped-def]
    fresh = f"sqlite:///{tmp_path / 'flag.db'}"
    result = cli("--database-url", fresh, "db", "upgrade", "--json",
                 SIMPLANE_DATABASE_URL="mysql://ignored")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["database"] == fresh
    assert (tmp_path / "flag.db").exists()


def test_db_upgrade_builds_an_empty_database_once(cli, empty_database_url):  # type: ignore[no-untyped-def]
    unmigrated = cli("accounts", "list", SIMPLANE_DATABASE_URL=empty_database_url)
    assert "db upgrade" in one_line_error(unmigrated)

    first = cli("db", "upgrade", "--json", SIMPLANE_DATABASE_URL=empty_database_url)
    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    assert body["migrated_from"] is None and body["revision"] and body["changed"] is True
    again = cli("db", "upgrade", SIMPLANE_DATABASE_URL=empty_database_url)
    assert again.exit_code == 0 and "already at revision" in again.stdout

    listed = cli("accounts", "list", "--json", SIMPLANE_DATABASE_URL=empty_database_url)
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []


def test_unreachable_database_is_one_line(cli):  # type: ignore[no-untyped-def]
    result = cli("accounts", "list",
                 SIMPLANE_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert one_line_error(result).startswith("error: database error:")
