"""`simplane sims import|generate`: all rows or none, every bad line named."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli_helpers import one_line_error
from sqlalchemy import func, select

from simplane.models import Thing, ThingStateChange
from simplane.things.identifiers import iccid_problem, luhn_check_digit, random_iccid, random_imsi


def write_csv(path: Path, lines: list[str], header: str = "iccid,imsi") -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def all_things(tenant) -> list[dict]:  # type: ignore[no-untyped-def]
    response = tenant.admin.get("/v1/things", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def database_counts(backend) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with backend.database.transaction(read_only=True) as session:
        return (session.scalar(select(func.count()).select_from(Thing)),
                session.scalar(select(func.count()).select_from(ThingStateChange)))


def test_import_ships_every_row_provisioned(cli, tenant, tmp_path):  # type: ignore[no-untyped-def]
    rows = [(random_iccid(), random_imsi()) for _ in range(5)]
    path = write_csv(tmp_path / "sims.csv", [f"{i},{m}" for i, m in rows])

    result = cli("sims", "import", "--account", tenant.account_id, str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"account_id": tenant.account_id, "imported": 5}
    things = all_things(tenant)
    assert sorted((t["iccid"], t["imsi"]) for t in things) == sorted(rows)
    assert {t["state"] for t in things} == {"PROVISIONED"}
    default_group = tenant.admin.get("/v1/things-groups").json()["items"][0]["id"]
    assert {t["things_group_id"] for t in things} == {default_group}


def test_import_rejection_names_every_bad_line_and_changes_nothing(  # type: ignore[no-untyped-def]
        cli, tenant, other_tenant, backend, tmp_path):
    shipped = other_tenant.things(1)[0]  # SIM identifiers are unique across accounts
    good_iccid, good_imsi = random_iccid(), random_imsi()
    luhn_ok = random_iccid()
    bad_luhn = luhn_ok[:-1] + str((int(luhn_ok[-1]) + 1) % 10)
    lines = [
        f"{good_iccid},{good_imsi}",          # 2: fine on its own
        f"{bad_luhn},{random_imsi()}",        # 3: wrong check digit
        f"{random_iccid()},2040412345",       # 4: IMSI too short
        f"{random_iccid()},20404123456789X",  # 5: IMSI not digits
        f"{good_iccid},{random_imsi()}",      # 6: ICCID repeats line 2
        f"{random_iccid()},{good_imsi}",      # 7: IMSI repeats line 2
        f"{shipped['iccid']},{random_imsi()}",  # 8: ICCID already in the database
        f"{random_iccid()},{shipped['imsi']}",  # 9: IMSI already in the database
        "",                                   # 10: blank lines are skipped
        f"{random_iccid()},{random_imsi()},x",  # 11: three fields
    ]
    path = write_csv(tmp_path / "bad.csv", lines)
    before = database_counts(backend)

    result = cli("sims", "import", "--account", tenant.account_id, str(path))
    line = one_line_error(result)
    assert result.exit_code == 1
    assert "nothing imported" in line
    named = {int(n) for n in re.findall(r"line (\d+):", line)}
    assert named == {3, 4, 5, 6, 7, 8, 9, 11}
    assert "Luhn" in line and "repeats line 2" in line and "already shipped" in line

    as_json = cli("sims", "import", "--account", tenant.account_id, str(path), "--json")
    problems = json.loads(one_line_error(as_json))["problems"]
    assert {int(re.match(r"line (\d+):", p).group(1)) for p in problems} == named

    assert database_counts(backend) == before
    assert all_things(tenant) == []
    assert tenant.admin.get("/v1/things", params={"iccid": good_iccid}).json()["items"] == []


def test_import_refuses_a_bad_header_a_missing_file_and_an_unknown_account(  # type: ignore[no-untyped-def]
        cli, tenant, tmp_path):
    swapped = write_csv(tmp_path / "swapped.csv", [f"{random_imsi()},{random_iccid()}"],
                        header="imsi,iccid")
    result = cli("sims", "import", "--account", tenant.account_id, str(swapped))
    assert "header iccid,imsi" in one_line_error(result)

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "header" in one_line_error(cli("sims", "import", "--account", tenant.account_id,
                                          str(empty)))
    header_only = write_csv(tmp_path / "header.csv", [])
    assert "no SIM lines" in one_line_error(cli("sims", "import", "--account",
                                                tenant.account_id, str(header_only)))
    missing = cli("sims", "import", "--account", tenant.account_id, str(tmp_path / "nope.csv"))
    assert "nope.csv" in one_line_error(missing) and missing.exit_code == 2

    good = write_csv(tmp_path / "good.csv", [f"{random_iccid()},{random_imsi()}"])
    unknown = cli("sims", "import", "--account", "acc_doesnotexist", str(good))
    assert "acc_doesnotexist" in one_line_error(unknown)
    assert all_things(tenant) == []


def test_import_accepts_a_bom_spaces_and_crlf(cli, tenant, tmp_path):  # type: ignore[no-untyped-def]
    iccid, imsi = random_iccid(), random_imsi()
    path = tmp_path / "excel.csv"
    path.write_bytes(f"\ufeffICCID , IMSI\r\n {iccid} , {imsi} \r\n".encode())
    result = cli("sims", "import", "--account", tenant.account_id, str(path))
    assert result.exit_code == 0, result.output
    assert [(t["iccid"], t["imsi"]) for t in all_things(tenant)] == [(iccid, imsi)]


def test_generate_ships_valid_unique_sims(cli, tenant):  # type: ignore[no-untyped-def]
    result = cli("sims", "generate", "--account", tenant.account_id, "--count", "25", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"account_id": tenant.account_id, "generated": 25}
    things = all_things(tenant)
    assert len(things) == 25
    assert len({t["iccid"] for t in things}) == len({t["imsi"] for t in things}) == 25
    assert all(iccid_problem(t["iccid"]) is None for t in things)
    assert all(luhn_check_digit(t["iccid"][:-1]) == t["iccid"][-1] for t in things)
    assert all(len(t["imsi"]) == 15 and t["imsi"].isdigit() for t in things)
    assert {t["state"] for t in things} == {"PROVISIONED"}


def test_generate_refuses_bad_input(cli, tenant):  # type: ignore[no-untyped-def]
    zero = cli("sims", "generate", "--account", tenant.account_id, "--count", "0")
    assert "--count" in one_line_error(zero) and zero.exit_code == 2
    unknown = cli("sims", "generate", "--account", "acc_doesnotexist", "--count", "3")
    assert "acc_doesnotexist" in one_line_error(unknown) and unknown.exit_code == 1
    assert all_things(tenant) == []
