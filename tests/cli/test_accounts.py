"""`simplane accounts create|list|set-tariff|extend-ip`."""

from __future__ import annotations

import ipaddress
import json
import secrets

import httpx
import pytest

from cli_helpers import create_account_json, one_line_error, token


def listed(cli, account_id: str) -> dict:  # type: ignore[no-untyped-def]
    result = cli("accounts", "list", "--json")
    assert result.exit_code == 0, result.output
    return next(a for a in json.loads(result.stdout) if a["id"] == account_id)


def test_create_json_credentials_work_against_the_api(cli, server):  # type: ignore[no-untyped-def]
    created = create_account_json(cli, "--currency", "USD", "--monthly-fee", "1.50",
                                  "--price-per-mb", "0.000125", "--price-per-sms-mt", "0.05",
                                  "--price-per-sms-mo", "0")
    assert set(created) == {"account_id", "user_id", "client_id", "client_secret"}

    bearer = token(server.base_url, created["client_id"], created["client_secret"])
    headers = {"Authorization": f"Bearer {bearer}"}
    account = httpx.get(f"{server.base_url}/v1/account", headers=headers)
    assert account.status_code == 200, account.text
    assert account.json()["id"] == created["account_id"]
    assert account.json()["billing"]["currency"] == "USD"
    me = httpx.get(f"{server.base_url}/v1/me", headers=headers).json()
    assert me["user"]["id"] == created["user_id"] and me["role"] == "admin"
    groups = httpx.get(f"{server.base_url}/v1/things-groups", headers=headers).json()["items"]
    assert [g["is_default"] for g in groups] == [True]

    row = listed(cli, created["account_id"])
    assert (row["currency"], row["monthly_fee"], row["price_per_mb"], row["price_per_sms_mt"],
            row["price_per_sms_mo"]) == ("USD", "1.5", "0.000125", "0.05", "0")
    assert row["things"] == 0 and len(row["ip_allocations"]) == 1


def test_create_text_output_shows_the_secret_once(cli):  # type: ignore[no-untyped-def]
    result = cli("accounts", "create", "--name", "Texty",
                 "--admin-email", f"t-{secrets.token_hex(6)}@example.com")
    assert result.exit_code == 0, result.output
    assert "Client secret: sk_" in result.stdout and "shown only this once" in result.stdout


@pytest.mark.parametrize("flag, value", [
    ("--monthly-fee", "abc"), ("--monthly-fee", "-1"), ("--price-per-mb", "0.0000001"),
    ("--price-per-sms-mt", "NaN"), ("--price-per-sms-mo", "1e13"),
])
def test_create_refuses_a_bad_amount_and_creates_nothing(cli, flag, value):  # type: ignore[no-untyped-def]
    name = f"Refused {secrets.token_hex(4)}"
    result = cli("accounts", "create", "--name", name, "--admin-email",
                 f"r-{secrets.token_hex(6)}@example.com", flag, value)
    line = one_line_error(result)
    assert result.exit_code == 2
    assert flag in line and repr(value) in line
    names = [a["name"] for a in json.loads(cli("accounts", "list", "--json").stdout)]
    assert name not in names


def test_create_refuses_a_bad_currency_and_taken_email(cli):  # type: ignore[no-untyped-def]
    email = f"dup-{secrets.token_hex(6)}@example.com"
    result = cli("accounts", "create", "--name", "Bad currency", "--admin-email", email,
                 "--currency", "euro")
    assert "currency" in one_line_error(result) and result.exit_code == 2
    assert cli("accounts", "create", "--name", "First", "--admin-email", email).exit_code == 0
    taken = cli("accounts", "create", "--name", "Second", "--admin-email", email, "--json")
    line = json.loads(one_line_error(taken))
    assert line["code"] == "email_taken" and email in line["error"]


def test_missing_option_is_one_line(cli):  # type: ignore[no-untyped-def]
    result = cli("accounts", "create", "--name", "No admin")
    assert "--admin-email" in one_line_error(result) and result.exit_code == 2


def test_list_table_shows_the_account(cli):  # type: ignore[no-untyped-def]
    created = create_account_json(cli, "--monthly-fee", "2")
    result = cli("accounts", "list")
    assert result.exit_code == 0, result.output
    assert created["account_id"] in result.stdout


def test_set_tariff_changes_only_what_is_given(cli):  # type: ignore[no-untyped-def]
    account_id = create_account_json(cli, "--monthly-fee", "1", "--price-per-mb", "0.01")[
        "account_id"]
    result = cli("accounts", "set-tariff", account_id, "--price-per-mb", "0.02",
                 "--price-per-sms-mo", "0.10", "--json")
    assert result.exit_code == 0, result.output
    expected = {"account_id": account_id, "currency": "EUR", "monthly_fee": "1",
                "price_per_mb": "0.02", "price_per_sms_mt": "0", "price_per_sms_mo": "0.1"}
    assert json.loads(result.stdout) == expected
    row = listed(cli, account_id)
    assert {k: row[k] for k in expected if k != "account_id"} == {
        k: v for k, v in expected.items() if k != "account_id"}


def test_set_tariff_refusals_change_nothing(cli):  # type: ignore[no-untyped-def]
    account_id = create_account_json(cli, "--monthly-fee", "3")["account_id"]
    before = listed(cli, account_id)

    bad = cli("accounts", "set-tariff", account_id, "--monthly-fee", "4", "--price-per-mb", "x1")
    assert "'x1'" in one_line_error(bad) and bad.exit_code == 2
    currency = cli("accounts", "set-tariff", account_id, "--monthly-fee", "4", "--currency", "e")
    assert "currency" in one_line_error(currency) and currency.exit_code == 2
    empty = cli("accounts", "set-tariff", account_id)
    assert "nothing to change" in one_line_error(empty) and empty.exit_code == 2
    assert listed(cli, account_id) == before

    unknown = cli("accounts", "set-tariff", "acc_doesnotexist", "--monthly-fee", "1")
    assert "acc_doesnotexist" in one_line_error(unknown) and unknown.exit_code == 1


def test_extend_ip_grants_a_block_and_refuses_overlaps(cli):  # type: ignore[no-untyped-def]
    account_id = create_account_json(cli)["account_id"]
    own = listed(cli, account_id)["ip_allocations"][0]
    # Outside the platform's default space, so it cannot meet another test's allocation.
    extra = str(ipaddress.IPv4Network((0x64400000 + secrets.randbelow(1 << 14) * 256, 24)))

    granted = cli("accounts", "extend-ip", account_id, "--cidr", extra, "--json")
    assert granted.exit_code == 0, granted.output
    body = json.loads(granted.stdout)
    assert body["cidr"] == extra and set(body["ip_allocations"]) == {own, extra}

    supernet = str(ipaddress.IPv4Network(extra).supernet(new_prefix=16))
    for cidr in (extra, own, supernet):
        refused = cli("accounts", "extend-ip", account_id, "--cidr", cidr)
        assert "overlaps" in one_line_error(refused) and refused.exit_code == 1
    malformed = cli("accounts", "extend-ip", account_id, "--cidr", "10.1.2.3/8")
    assert "10.1.2.3/8" in one_line_error(malformed) and malformed.exit_code == 2
    assert set(listed(cli, account_id)["ip_allocations"]) == {own, extra}

    unknown = cli("accounts", "extend-ip", "acc_doesnotexist", "--cidr", "192.0.2.0/24")
    assert "acc_doesnotexist" in one_line_error(unknown)
