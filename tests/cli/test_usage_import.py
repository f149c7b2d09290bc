"""`simplane usage import` (all rows or none, every bad line named; COPY on PostgreSQL) and
`simplane billing close`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from billkit import MB, arrange, assert_cycles_match_days, at, report
from cli_helpers import one_line_error
from sqlalchemy import func, select

from simplane.billing.cycles import period_of
from simplane.billing.service import is_closed
from simplane.cli.usage import read_usage
from simplane.models import UsageDaily, UsageRecord, utcnow
from simplane.things.identifiers import random_imsi

HEADER = "imsi,start,end,bytes_up,bytes_down"


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def active_things(tenant, count: int) -> list[dict]:  # type: ignore[no-untyped-def]
    things = tenant.things(count)
    for thing in things:
        assert tenant.admin.patch(f"/v1/things/{thing['id']}",
                                  json={"state": "ACTIVE"}).status_code == 200
    return things


def usage_state(backend, account_id: str) -> tuple:  # type: ignore[no-untyped-def]
    with backend.database.transaction(read_only=True) as session:
        records = session.execute(
            select(UsageRecord.thing_id, UsageRecord.recorded_at, UsageRecord.bytes_up,
                   UsageRecord.bytes_down, UsageRecord.late)
            .where(UsageRecord.account_id == account_id)
            .order_by(UsageRecord.thing_id, UsageRecord.recorded_at, UsageRecord.bytes_up)).all()
        daily = session.execute(
            select(UsageDaily.thing_id, UsageDaily.day, UsageDaily.bytes_up, UsageDaily.bytes_down)
            .where(UsageDaily.account_id == account_id)
            .order_by(UsageDaily.thing_id, UsageDaily.day)).all()
        everything = session.scalar(select(func.count()).select_from(UsageRecord))
    return [tuple(r) for r in records], [tuple(d) for d in daily], everything


def test_import_loads_records_and_rollups_and_the_report_bills_them(  # type: ignore[no-untyped-def]
        cli, new_tenant, backend, tmp_path):
    tenant = new_tenant(price_per_mb=Decimal("0.10"))
    first, second = active_things(tenant, 2)
    end = utcnow().replace(microsecond=0)
    start = end - timedelta(minutes=30)
    offset = end.astimezone(datetime.fromisoformat("2025-01-01T00:00:00+02:00").tzinfo)
    path = write_csv(tmp_path / "usage.csv", [
        f"{first['imsi']},{rfc3339(start)},{rfc3339(end)},{MB},{MB // 4}",
        # The same instant written with an offset and a fraction of a second.
        f"{first['imsi']},{rfc3339(start)},{offset.isoformat()[:19]}.000+02:00,0,{MB}",
        "",  # blank lines are skipped
        f" {second['imsi']} ,{rfc3339(start)},{rfc3339(end)},{MB // 2},0",
    ])

    result = cli("usage", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "file": str(path), "imported": 3, "late": 0, "things": 2, "days": 2,
        "bytes_up": MB + MB // 2, "bytes_down": MB + MB // 4}

    records, daily, _ = usage_state(backend, tenant.account_id)
    assert sorted(records) == sorted([
        (first["id"], end, MB, MB // 4, False), (first["id"], end, 0, MB, False),
        (second["id"], end, MB // 2, 0, False)])
    assert sorted(daily) == sorted([(first["id"], end.date(), MB, MB + MB // 4),
                                    (second["id"], end.date(), MB // 2, 0)])

    # 2.25 MB x 0.10 = 0.225 -> 0.23; 0.5 MB -> 0.05.
    lines = {x["thing_id"]: x for x in report(tenant.admin, period_of(end))["lines"]["items"]}
    assert (lines[first["id"]]["data_bytes"], lines[first["id"]]["data_charge"]) == \
        (2 * MB + MB // 4, "0.23")
    assert (lines[second["id"]]["data_bytes"], lines[second["id"]]["data_charge"]) == \
        (MB // 2, "0.05")

    human = cli("usage", "import", str(path))
    assert human.exit_code == 0, human.output
    assert "Imported 3 usage record(s)" in human.stdout
    # The file carries no record ids to deduplicate by: a second import counts again.
    assert report(tenant.admin, period_of(end))["totals"]["data_bytes"] == 2 * (2 * MB + 3 * MB // 4)
    assert assert_cycles_match_days(backend.database, tenant.account_id) == {
        (period_of(end), first["id"]): (2 * MB, 2 * (MB + MB // 4), 0, 0),
        (period_of(end), second["id"]): (MB, 0, 0, 0)}


def test_rejection_names_every_bad_line_and_changes_nothing(  # type: ignore[no-untyped-def]
        cli, tenant, backend, tmp_path):
    thing = tenant.things(1)[0]
    imsi = thing["imsi"]
    ok = f"{imsi},2025-03-01T00:00:00Z,2025-03-01T00:10:00Z"
    future = rfc3339(utcnow() + timedelta(days=1))
    lines = [
        f"{ok},100,200",                                              # 2: fine on its own
        f"{random_imsi()},2025-03-01T00:00:00Z,2025-03-01T00:10:00Z,1,1",  # 3: unknown IMSI
        f"{ok},-5,1",                                                 # 4: negative
        f"{ok},1.5,1",                                                # 5: not whole
        f"{ok},1,{2**63}",                                            # 6: too large
        f"{imsi},2025-03-01T00:10:00Z,2025-03-01T00:00:00Z,1,1",      # 7: end before start
        f"{imsi},2025-03-01,2025-03-01T00:10:00Z,1,1",                # 8: a date, not a time
        f"{imsi},2025-03-01T00:00:00,2025-03-01T00:10:00Z,1,1",       # 9: no offset
        f"{imsi},2025-03-01T00:00:00Z,2025-02-30T00:10:00Z,1,1",      # 10: no such day
        f"{imsi},2025-03-01T00:00:00Z,{future},1,1",                  # 11: in the future
        f"{ok},1",                                                    # 12: four fields
        "2040412345,2025-03-01T00:00:00Z,2025-03-01T00:10:00Z,1,1",  # 13: IMSI too short
        f"{ok},abc,",                                                 # 14: two bad numbers
    ]
    path = write_csv(tmp_path / "bad.csv", lines)
    before = usage_state(backend, tenant.account_id)

    result = cli("usage", "import", str(path))
    line = one_line_error(result)
    assert result.exit_code == 1
    assert "nothing imported" in line
    assert {int(n) for n in re.findall(r"line (\d+):", line)} == set(range(3, 15))
    for words in ("unknown IMSI", "before start", "in the future", "is not an RFC 3339 time",
                  "expected 5 fields", "must be 15 digits", "is not a whole number of bytes"):
        assert words in line, words

    as_json = cli("usage", "import", str(path), "--json")
    problems = json.loads(one_line_error(as_json))["problems"]
    assert [int(re.match(r"line (\d+):", p).group(1)) for p in problems] == \
        [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 14]
    assert usage_state(backend, tenant.account_id) == before


def test_bad_files_are_one_line_errors(cli, tmp_path):  # type: ignore[no-untyped-def]
    header = cli("usage", "import", str(write_csv(tmp_path / "h.csv", [], "iccid,imsi")))
    assert "line 1 must be the header imsi,start,end,bytes_up,bytes_down" in one_line_error(header)
    empty = cli("usage", "import", str(write_csv(tmp_path / "e.csv", [])))
    assert "no usage lines" in one_line_error(empty)
    missing = cli("usage", "import", str(tmp_path / "missing.csv"))
    assert "does not exist" in one_line_error(missing) and missing.exit_code == 2


def test_usage_for_a_closed_cycle_counts_in_the_open_cycle_as_late(  # type: ignore[no-untyped-def]
        cli, new_tenant, backend, tmp_path):
    tenant = new_tenant(monthly_fee=Decimal("1.00"), price_per_mb=Decimal("1.00"))
    thing = tenant.things(1)[0]
    with arrange(tenant, at("2025-08-10T00:00:00")) as arranged:
        arranged.history(thing["id"], at("2025-08-11T00:00:00"),
                         [(at("2025-08-12T00:00:00"), "ACTIVE")])
        arranged.usage(thing["id"], at("2025-09-10T00:00:00"), bytes_up=MB)

    # September's grace (3 days by default here) ends on 4 October.
    early = cli("billing", "close", "--now", "2025-10-03T23:59:59Z", "--json")
    assert early.exit_code == 0, early.output
    body = json.loads(early.stdout)
    assert body["now"] == "2025-10-03T23:59:59Z" and body["grace_days"] == 3
    assert {"account_id": tenant.account_id, "period": "2025-09"} not in body["closed"]
    due = cli("billing", "close", "--now", "2025-10-04T00:00:00Z", "--json")
    assert due.exit_code == 0, due.output
    with backend.database.transaction(read_only=True) as session:
        assert is_closed(session, tenant.account_id, "2025-08")
        assert is_closed(session, tenant.account_id, "2025-09")
    september = report(tenant.admin, "2025-09")
    assert september["status"] == "CLOSED" and september["totals"]["total"] == "2.00"

    path = write_csv(tmp_path / "late.csv", [
        f"{thing['imsi']},2025-09-20T10:00:00Z,2025-09-20T11:00:00Z,{2 * MB},0",
        f"{thing['imsi']},2025-10-01T10:00:00Z,2025-10-01T11:00:00Z,{MB},0",
    ])
    result = cli("usage", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["late"] == 1

    today = utcnow()
    records, daily, _ = usage_state(backend, tenant.account_id)
    assert (thing["id"], at("2025-09-20T11:00:00"), 2 * MB, 0, True) in records
    assert (thing["id"], at("2025-10-01T11:00:00"), MB, 0, False) in records
    assert (thing["id"], today.date(), 2 * MB, 0) in daily
    assert (thing["id"], at("2025-10-01T00:00:00").date(), MB, 0) in daily
    assert report(tenant.admin, "2025-09") == september
    [current] = report(tenant.admin, period_of(today))["lines"]["items"]
    assert current["data_bytes"] == 2 * MB
    # The late record went to today's cycle, the October one to October's, in both roll-ups.
    assert assert_cycles_match_days(backend.database, tenant.account_id) == {
        ("2025-09", thing["id"]): (MB, 0, 0, 0), ("2025-10", thing["id"]): (MB, 0, 0, 0),
        (period_of(today), thing["id"]): (2 * MB, 0, 0, 0)}


def test_billing_close_refuses_a_bad_or_future_now(cli):  # type: ignore[no-untyped-def]
    future = cli("billing", "close", "--now", rfc3339(utcnow() + timedelta(days=2)))
    assert "in the future" in one_line_error(future) and future.exit_code == 2
    bad = cli("billing", "close", "--now", "yesterday", "--json")
    assert "is not an RFC 3339 time" in json.loads(one_line_error(bad))["error"]
    assert bad.exit_code == 2


def expected_records(path: Path, thing_id: str) -> list[tuple]:
    """What the row-by-row checks (SQLite's path, in Python) read from the file."""
    rows, problems = read_usage(path, utcnow())
    assert problems == []
    return sorted((thing_id, row.end, row.bytes_up, row.bytes_down, False) for row in rows)


def test_unusual_valid_lines_count_as_the_row_checks_read_them(  # type: ignore[no-untyped-def]
        cli, tenant, backend, tmp_path):
    """Lines PostgreSQL's set-based checks do not read themselves go to the row checks, which
    take them: same records on both engines, and the same as Python reads them."""
    thing = tenant.things(1)[0]
    imsi = thing["imsi"]
    path = write_csv(tmp_path / "unusual.csv", [
        f"\t{imsi}\t,2025-03-01T00:00:00Z,2025-03-01T00:10:00Z,1,2",            # tabs
        f"{imsi},2025-03-01t00:00:00z,2025-03-01t00:10:00z,3,4",                # t and z
        f"{imsi},2025-03-01 00:00:00+05:60,2025-03-01 00:10:00+05:60,5,6",      # read as +06:00
        f"{imsi},2025-03-01T00:00:00.1234567Z,2025-03-01T00:10:00.9999999+00:00,7,8",  # cut to µs
        f"{imsi},2025-03-01T00:00:00Z,2025-03-01T00:10:00Z,0000000000000000000009,010",
        f"{imsi},2025-03-01T00:00:00-23:59,2025-03-01T00:10:00-23:59,11,12",    # past 15:59
        f"{imsi},2025-03-02T00:00:00.5Z,2025-03-02T00:00:00.5Z,13,0",
        " , ,\t,,",                                                             # blank
        "",
    ])
    result = cli("usage", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == 7
    records, daily, _ = usage_state(backend, tenant.account_id)
    assert sorted(records) == expected_records(path, thing["id"])
    by_day: dict = {}
    for _, end, up, down, _ in records:
        day = by_day.setdefault(end.date(), [0, 0])
        day[0] += up
        day[1] += down
    assert sorted(daily) == sorted((thing["id"], day, up, down) for day, (up, down) in by_day.items())


def test_a_csv_file_with_quotes_imports_and_names_its_bad_lines(  # type: ignore[no-untyped-def]
        cli, tenant, backend, tmp_path):
    thing = tenant.things(1)[0]
    imsi = thing["imsi"]
    good = write_csv(tmp_path / "quoted.csv", [
        f'"{imsi}","2025-03-01T00:00:00Z","2025-03-01T00:10:00Z","100","200"',
        f'{imsi},2025-03-01T00:00:00Z,"2025-03-01T00:20:00Z",300,400',
    ], header='"imsi","start","end","bytes_up","bytes_down"')
    result = cli("usage", "import", str(good), "--json")
    assert result.exit_code == 0, result.output
    records, _, _ = usage_state(backend, tenant.account_id)
    assert sorted(records) == expected_records(good, thing["id"])

    bad = write_csv(tmp_path / "quoted-bad.csv", [
        f'"{imsi}","2025-03-01T00:00:00Z","2025-03-01T00:10:00Z","1,5","2"',   # 2: 1,5
        f'"{imsi}","2025-03-01T00:00:00Z","2025-03-01T00:10:00Z","1',          # 3-4: a field
        '2","2"',                                                              #   on two lines
        f'"{imsi}","2025-03-01T00:00:00Z","2025-03-01T00:10:00Z"',             # 5: 3 fields
    ])
    before = usage_state(backend, tenant.account_id)
    problems = json.loads(one_line_error(cli("usage", "import", str(bad), "--json")))["problems"]
    assert problems == [
        "line 2: bytes_up '1,5' is not a whole number of bytes (0 to 9223372036854775807)",
        "line 4: bytes_up '1\\n2' is not a whole number of bytes (0 to 9223372036854775807)",
        "line 5: expected 5 fields (imsi,start,end,bytes_up,bytes_down), found 3"]
    assert usage_state(backend, tenant.account_id) == before


def test_usual_lines_with_one_bad_value_name_it(  # type: ignore[no-untyped-def]
        cli, tenant, backend, tmp_path):
    """A file of the usual shape whose problem only the database or the Things can tell (a
    day that does not exist, an unknown IMSI, times out of order, the future): the line is
    named, as on SQLite, and nothing is imported."""
    thing = tenant.things(1)[0]
    imsi = thing["imsi"]
    usual = [f"{imsi},2025-03-01T00:{n % 60:02d}:00Z,2025-03-01T01:{n % 60:02d}:00Z,{n},{2 * n}"
             for n in range(2000)]
    future = rfc3339(utcnow().replace(microsecond=0) + timedelta(hours=1))
    cases = {
        "2025-02-30": (f"{imsi},2025-02-28T00:00:00Z,2025-02-30T00:00:00Z,1,1",
                       "end '2025-02-30T00:00:00Z' is not an RFC 3339 time"),
        "unknown": (f"{random_imsi()},2025-03-01T00:00:00Z,2025-03-01T00:10:00Z,1,1",
                    "unknown IMSI"),
        "order": (f"{imsi},2025-03-01T00:10:00Z,2025-03-01T00:00:00Z,1,1", "is before start"),
        "future": (f"{imsi},2025-03-01T00:00:00Z,{future},1,1", "is in the future"),
        "hour 24": (f"{imsi},2025-03-01T00:00:00Z,2025-03-01T24:00:00Z,1,1",
                    "is not an RFC 3339 time"),
    }
    before = usage_state(backend, tenant.account_id)
    for name, (line, words) in cases.items():
        path = write_csv(tmp_path / f"{name.replace(' ', '-')}.csv", [*usual, line, *usual[:3]])
        problems = json.loads(one_line_error(cli("usage", "import", str(path), "--json")))["problems"]
        assert len(problems) == 1 and problems[0].startswith("line 2002: "), (name, problems)
        assert words in problems[0], (name, problems)
    assert usage_state(backend, tenant.account_id) == before


def test_windows_line_ends_a_bom_and_no_final_line_end(  # type: ignore[no-untyped-def]
        cli, tenant, backend, tmp_path):
    thing = tenant.things(1)[0]
    lines = [f"{thing['imsi']},2025-03-01T00:00:00Z,2025-03-01T00:{n:02d}:00Z,{n},{n}"
             for n in range(1, 50)]
    path = tmp_path / "windows.csv"
    path.write_bytes(("\ufeff" + "\r\n".join([HEADER, *lines[:20], "", *lines[20:]])).encode())
    result = cli("usage", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == 49
    records, daily, _ = usage_state(backend, tenant.account_id)
    assert sorted(records) == expected_records(path, thing["id"])
    assert daily == [(thing["id"], at("2025-03-01T00:00:00").date(), 49 * 25, 49 * 25)]
    with backend.database.transaction(read_only=True) as session:
        ids = session.scalars(select(UsageRecord.id)
                              .where(UsageRecord.account_id == tenant.account_id)).all()
    assert len(set(ids)) == 49 and all(re.fullmatch(r"use_[0-9A-Z]{29}", i) for i in ids)
