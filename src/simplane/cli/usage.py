"""`simplane usage import` (usage records from a mediation system) and `simplane billing close`.

An import is all or nothing: every row is checked first and every bad one named by its line;
then, in one transaction, the raw rows go into `usage_records` and the per-Thing, per-day
roll-ups billing reads are increased. A row counts on the UTC day of its `end`, unless that
day's cycle is already CLOSED: then it counts today, in the open cycle, and is marked late
(billing.service.attribution_day).

SQLite checks and writes row by row here; PostgreSQL loads the file with COPY and does the
same set-based (cli/usage_postgres.py), with the same checks and messages.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ..billing import rollups
from ..billing.closing import CLOSE_LOCK
from ..billing.cycles import period_of
from ..billing.service import attribution_day, close_due_cycles
from ..core.db import Database, advisory_lock, is_postgres
from ..core.ids import new_id
from ..core.logging import configure_logging
from ..models import Thing, UsageDaily, UsageRecord, utcnow
from ..things.identifiers import imsi_problem
from .common import (
    EXIT_USAGE,
    CliError,
    JsonFlag,
    open_database,
    out,
    print_json,
    progress,
    state,
)
from .sims import rejection

log = logging.getLogger("simplane.usage")
usage_app = typer.Typer(help="Usage records from a mediation system.", no_args_is_help=True)
billing_app = typer.Typer(help="Billing cycles.", no_args_is_help=True)

HEADER = ["imsi", "start", "end", "bytes_up", "bytes_down"]
BATCH = 5000
MAX_BYTES = 2**63 - 1  # BIGINT
# Mediation clocks drift a little; usage further ahead than this is a bad record.
CLOCK_SKEW = timedelta(minutes=5)
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")
_DIGITS = re.compile(r"^[0-9]+$")


def register(app: typer.Typer) -> None:
    app.add_typer(usage_app, name="usage")
    app.add_typer(billing_app, name="billing")


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 date-time (with its offset) as UTC, or None."""
    match = _RFC3339.match(text)
    if not match:
        return None
    day, clock, fraction, offset = match.groups()
    fraction = f".{fraction[:6]}" if fraction else ""  # microseconds are what Python keeps
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{day}T{clock}{fraction}{offset}").astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved out of range by UTC
        return None


@dataclass(frozen=True)
class UsageRow:
    line: int
    imsi: str
    start: datetime
    end: datetime
    bytes_up: int
    bytes_down: int


def _row(line: int, fields: list[str], now: datetime) -> tuple[UsageRow | None, list[str]]:
    imsi, start_text, end_text, up_text, down_text = (f.strip() for f in fields)
    problems = []
    if problem := imsi_problem(imsi):
        problems.append(problem)
    start, end = parse_time(start_text), parse_time(end_text)
    for name, text, value in (("start", start_text, start), ("end", end_text, end)):
        if value is None:
            problems.append(f"{name} {text!r} is not an RFC 3339 time such as "
                            f"2025-03-01T12:00:00Z")
    if start is not None and end is not None and end < start:
        problems.append(f"end {end_text} is before start {start_text}")
    if end is not None and end > now + CLOCK_SKEW:
        problems.append(f"end {end_text} is in the future")
    counts = []
    for name, text in (("bytes_up", up_text), ("bytes_down", down_text)):
        if not _DIGITS.match(text) or int(text) > MAX_BYTES:
            problems.append(f"{name} {text!r} is not a whole number of bytes (0 to {MAX_BYTES})")
        else:
            counts.append(int(text))
    if problems:
        return None, [f"line {line}: {p}" for p in problems]
    assert start is not None and end is not None
    return UsageRow(line, imsi, start, end, counts[0], counts[1]), []


def check_fields(line: int, fields: list[str], now: datetime) -> tuple[UsageRow | None, list[str]]:
    """One record that is not blank: its row, or its problems (each naming the line)."""
    if len(fields) != len(HEADER):
        return None, [f"line {line}: expected {len(HEADER)} fields ({','.join(HEADER)}), "
                      f"found {len(fields)}"]
    return _row(line, fields, now)


def read_usage(path: Path, now: datetime) -> tuple[list[UsageRow], list[str]]:
    """The valid rows of the file and a problem, naming its line, for every other row.

    Line numbers are the file's: the header is line 1.
    """
    rows: list[UsageRow] = []
    problems: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CliError(f"{path} is empty; its first line must be the header "
                               f"{','.join(HEADER)}")
            if [field.strip().lower() for field in header] != HEADER:
                raise CliError(f"{path}: line 1 must be the header {','.join(HEADER)} "
                               f"(found {','.join(header)!r})")
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue
                row, row_problems = check_fields(reader.line_num, fields, now)
                problems.extend(row_problems)
                if row is not None:
                    rows.append(row)
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise CliError(f"{path} is not a valid CSV file: {exc}") from None
    if not rows and not problems:
        raise CliError(f"{path} has no usage lines after the header")
    return rows, problems


def find_things(session: Session, imsis: Iterable[str]) -> dict[str, tuple[str, str]]:
    """IMSI -> (thing id, account id) for the IMSIs that belong to a Thing."""
    wanted = sorted(set(imsis))
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(wanted), BATCH):
        for imsi, thing_id, account_id in session.execute(
                select(Thing.imsi, Thing.id, Thing.account_id)
                .where(Thing.imsi.in_(wanted[start:start + BATCH]))):
            found[imsi] = (thing_id, account_id)
    return found


RECORD_COLUMNS = ("id", "account_id", "thing_id", "recorded_at", "bytes_up", "bytes_down", "late")


def copy_usage_records(session: Session, records: list[dict[str, Any]],
                       advance: Callable[[int], None]) -> None:
    """PostgreSQL only: COPY the raw rows, inside the session's transaction."""
    driver = session.connection().connection.driver_connection  # psycopg.Connection
    statement = f"COPY usage_records ({', '.join(RECORD_COLUMNS)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for number, record in enumerate(records, start=1):
            copy.write_row(tuple(record[name] for name in RECORD_COLUMNS))
            if number % BATCH == 0:
                advance(BATCH)
    advance(len(records) % BATCH)


def insert_usage_records(session: Session, records: list[dict[str, Any]],
                         advance: Callable[[int], None]) -> None:
    for start in range(0, len(records), BATCH):
        chunk = records[start:start + BATCH]
        session.execute(insert(UsageRecord), chunk)
        advance(len(chunk))


def add_to_daily(session: Session, rows: list[dict[str, Any]]) -> None:
    """Increase (or create) each Thing's day, and its cycle; `rows` holds each (thing_id, day)
    once."""
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(UsageDaily)
    table = UsageDaily.__table__
    statement = statement.on_conflict_do_update(
        index_elements=["thing_id", "day"],
        set_={name: table.c[name] + statement.excluded[name] for name in ("bytes_up",
                                                                          "bytes_down")})
    for start in range(0, len(rows), BATCH):
        session.execute(statement, rows[start:start + BATCH])
    rollups.add_days(session, rows)


@dataclass
class ImportSummary:
    records: int = 0
    late: int = 0
    things: int = 0
    days: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


def import_usage(session: Session, rows: list[UsageRow], things: dict[str, tuple[str, str]],
                 now: datetime, advance: Callable[[int], None] = lambda _: None) -> ImportSummary:
    # Closing and a bulk load exclude each other: a cycle cannot close between the check
    # below and this transaction's commit, so no row lands in a cycle already frozen.
    advisory_lock(session, CLOSE_LOCK)
    late_by_cycle: dict[tuple[str, str], bool] = {}
    records: list[dict[str, Any]] = []
    daily: dict[tuple[str, date], dict[str, Any]] = {}
    summary = ImportSummary(records=len(rows))
    for row in rows:
        thing_id, account_id = things[row.imsi]
        cycle = (account_id, period_of(row.end))
        if cycle not in late_by_cycle:
            late_by_cycle[cycle] = attribution_day(session, account_id, row.end, now)[1]
        late = late_by_cycle[cycle]
        counted_on = (now if late else row.end).date()
        records.append({"id": new_id("usage"), "account_id": account_id, "thing_id": thing_id,
                        "session_id": None, "recorded_at": row.end, "bytes_up": row.bytes_up,
                        "bytes_down": row.bytes_down, "late": late})
        day = daily.setdefault((thing_id, counted_on), {
            "thing_id": thing_id, "day": counted_on, "account_id": account_id, "bytes_up": 0,
            "bytes_down": 0, "sms_mt": 0, "sms_mo": 0})
        day["bytes_up"] += row.bytes_up
        day["bytes_down"] += row.bytes_down
        summary.late += late
        summary.bytes_up += row.bytes_up
        summary.bytes_down += row.bytes_down
    if is_postgres(session):
        copy_usage_records(session, records, advance)
    else:
        insert_usage_records(session, records, advance)
    add_to_daily(session, list(daily.values()))
    summary.things = len({thing_id for thing_id, _ in daily})
    summary.days = len(daily)
    return summary


@usage_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(
        metavar="FILE.csv", exists=True, dir_okay=False, readable=True,
        help="CSV with the header imsi,start,end,bytes_up,bytes_down (RFC 3339 times).")],
    json_output: JsonFlag = False,
) -> None:
    """Import every usage record of FILE.csv, or none: each bad line is named."""
    settings = state(ctx).settings()
    now = utcnow()
    with open_database(settings) as database:
        if database.is_postgres:
            if settings.log_level == "DEBUG":  # the time of each phase, as a JSON log line
                configure_logging(settings.log_level)
            summary = _import_postgres(database, file, now, json_output)
        else:
            summary = _import_rows(database, file, now, json_output)
    result = {"file": str(file), "imported": summary.records, "late": summary.late,
              "things": summary.things, "days": summary.days, "bytes_up": summary.bytes_up,
              "bytes_down": summary.bytes_down}
    if json_output:
        print_json(result)
        return
    late = f", {summary.late} late (counted in the open cycle)" if summary.late else ""
    out.print(f"Imported {summary.records} usage record(s) from {file} for {summary.things} "
              f"Thing(s): {summary.bytes_up} bytes up, {summary.bytes_down} bytes down{late}.")


def _reject(file: Path, problems: list[str]) -> CliError:
    return CliError(rejection(f"{file} rejected", problems), details={"problems": problems})


def _import_rows(database: Database, file: Path, now: datetime,
                 json_output: bool) -> ImportSummary:
    """Row by row: every record checked in Python, then written in batches (SQLite)."""
    rows, problems = read_usage(file, now)
    with database.transaction() as session:
        things = find_things(session, (row.imsi for row in rows))
        problems += [f"line {row.line}: unknown IMSI {row.imsi}" for row in rows
                     if row.imsi not in things]
        if problems:
            problems.sort(key=lambda p: int(re.match(r"line (\d+)", p).group(1)))  # type: ignore[union-attr]
            raise _reject(file, problems)
        with progress(not json_output) as bar:
            task = bar.add_task(f"Importing {file.name}", total=len(rows))
            return import_usage(session, rows, things, now, lambda n: bar.advance(task, n))


class _Phases:
    """The PostgreSQL import's phases, one after another on the progress bar."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task: TaskID | None = None
        self.total = 1

    def phase(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            self.bar.update(self.task, total=self.total, completed=self.total)
        self.task = self.bar.add_task(name, total=total)
        self.total = total or 1

    def advance(self, amount: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, amount)


def _import_postgres(database: Database, file: Path, now: datetime,
                     json_output: bool) -> ImportSummary:
    """Set-based, through COPY (cli/usage_postgres.py): same checks, same messages."""
    from .usage_postgres import import_file

    with progress(not json_output) as bar, database.transaction() as session:
        outcome = import_file(session, file, now, HEADER, check_fields, now + CLOCK_SKEW,
                              _Phases(bar))
        if outcome.problems:
            raise _reject(file, [problem for _, problem in outcome.problems])
    log.debug("usage import", extra={"file": str(file), "records": outcome.records,
                                     "fast": outcome.fast, "seconds": outcome.timings})
    return ImportSummary(records=outcome.records, late=outcome.late, things=outcome.things,
                         days=outcome.days, bytes_up=outcome.bytes_up,
                         bytes_down=outcome.bytes_down)


def _moment(value: str) -> datetime:
    moment = parse_time(value)
    if moment is None:
        raise typer.BadParameter(f"{value!r} is not an RFC 3339 time such as "
                                 f"2025-03-04T00:00:00Z", param_hint="'--now'")
    return moment


@billing_app.command("close")
def close_command(
    ctx: typer.Context,
    now: Annotated[str | None, typer.Option(
        "--now", metavar="RFC3339",
        help="Close as of this instant (default: now); it cannot be in the future.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Close every ended cycle whose grace period (SIMPLANE_BILLING_GRACE_DAYS) is over, and
    freeze its report. The server does this by itself every few minutes."""
    settings = state(ctx).settings()
    moment = _moment(now) if now is not None else utcnow()
    if moment > utcnow():
        # Closing the open cycle early would freeze it while usage still arrives for it.
        raise CliError(f"--now {now} is in the future", EXIT_USAGE)
    grace = settings.billing_grace_days
    with open_database(settings) as database, database.transaction() as session:
        advisory_lock(session, CLOSE_LOCK)
        closed = close_due_cycles(session, moment, timedelta(days=grace))
    result = {"now": moment, "grace_days": grace,
              "closed": [{"account_id": account, "period": period} for account, period in closed]}
    if json_output:
        print_json(result)
        return
    if not closed:
        out.print(f"No cycle to close as of {moment.isoformat()} ({grace} day(s) of grace).")
        return
    out.print(f"Closed {len(closed)} cycle(s) as of {moment.isoformat()}: " + ", ".join(
        f"{account} {period}" for account, period in closed) + ".")
