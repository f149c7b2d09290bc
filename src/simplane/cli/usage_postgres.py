"""`simplane usage import` on PostgreSQL: the file goes in with COPY and is checked, attributed
and rolled up set-based, in the import's one transaction. Same rules, same messages as the
row-by-row path in cli/usage.py (which SQLite uses), without 10,000,000 records passing through
Python one by one.

The fast path, for a file written the usual way (what mediation systems write): while the
file streams into COPY, Python matches each 1 MiB block against one regular expression of the
usual shape (15-digit IMSI, RFC 3339 `T` times with `Z` or an offset, plain digits) at C
speed; PostgreSQL's own input functions parse the values (they refuse a 30 February) into a
temporary table; one statement then joins the Things, checks the times, writes the records
and adds them up per Thing and day. Every value the expression lets through is one the row
checks accept, with the same value. If anything does not fit (a block the expression refuses,
a value PostgreSQL refuses, a record left out by the statement: unknown IMSI, end before
start, end in the future), nothing of it stays (a savepoint) and the careful path runs.

The careful path names every bad line: the lines are COPYed as they are, one row per line,
COPY numbering them (a file with quotes or other CSV features goes through Python's csv
reader instead); one query checks them the same way; every line it does not accept, good or
bad, is judged by the row checks themselves (`check_fields`), so the messages are theirs and a
valid line the query cannot read (a tab around a field, `t` for `T`) still counts.
"""

from __future__ import annotations

import csv
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from ..billing.closing import CLOSE_LOCK
from ..core.db import advisory_lock
from ..core.ids import new_id
from .common import CliError

CHUNK = 1 << 20
# Bytes that make a file more than lines of comma-separated text: CSV quoting, COPY's escape
# and end-of-data marker (`\.`), the delimiter and quote the line COPY uses instead, NUL.
NOT_PLAIN = (b'"', b"\\", b"\x1e", b"\x1f", b"\x00")
# The usual record: nothing that `parse_time`, `imsi_problem` or the byte counts would read
# differently from PostgreSQL (no hour 24 or second 60, which PostgreSQL takes; no year 0 or 1,
# which an offset can move out of Python's range; at most 6 decimals, which both keep
# exactly; at most 18 digits, which always fit a BIGINT).
_TIME = (rb"(?!000[01])[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
         rb"(?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
USUAL_LINES = re.compile(rb"(?:[0-9]{15}," + _TIME + b"," + _TIME
                         + rb",[0-9]{1,18},[0-9]{1,18}\r?\n)*")
_BLANK_LINE = re.compile(rb"^\r?\n", re.MULTILINE)


class Checker(Protocol):
    def __call__(self, line: int, fields: list[str], now: datetime) -> tuple[Any, list[str]]: ...


class Progress(Protocol):
    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, amount: int) -> None: ...


@dataclass
class Outcome:
    problems: list[tuple[int, str]] = field(default_factory=list)
    records: int = 0
    late: int = 0
    things: int = 0
    days: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    fast: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def _time_sql(t: str) -> tuple[str, str]:
    """(accepted, value) as SQL for the trimmed text column `t` whose digits-masked copy is
    `{t}_shape`: RFC 3339 with `T` or a space, an optional fraction (cut to microseconds, as
    `parse_time` does) and `Z` or an offset of at most 23:59. Ranges are compared as text (each
    position is known to be a digit) so nothing is cast before it is known to be valid."""
    shape = f"{t}_shape"
    fractional = f"substr({shape}, 20, 1) = '.'"
    zone = f"CASE WHEN {fractional} THEN ltrim(substr({shape}, 21), '0') ELSE substr({shape}, 20) END"
    digits = f"(length({shape}) - 20 - length({zone}))"
    year, month, day = f"substr({t}, 1, 4)", f"substr({t}, 6, 2)", f"substr({t}, 9, 2)"
    leap = (f"({year}::int % 4 = 0 AND ({year}::int % 100 <> 0 OR {year}::int % 400 = 0))")
    accepted = f"""(
        left({shape}, 10) = '0000-00-00' AND substr({t}, 11, 1) IN ('T', ' ')
        AND substr({shape}, 12, 8) = '00:00:00'
        AND {zone} IN ('Z', '+00:00', '-00:00') AND (NOT {fractional} OR {digits} > 0)
        AND {year} BETWEEN '0002' AND '9998' AND {month} BETWEEN '01' AND '12'
        AND {day} >= '01'
        AND ({day} <= '28' OR ({day} <= '30' AND {month} <> '02')
             OR ({day} = '31' AND {month} IN ('01', '03', '05', '07', '08', '10', '12'))
             OR ({day} = '29' AND {month} = '02' AND {leap}))
        AND substr({t}, 12, 2) <= '23' AND substr({t}, 15, 2) <= '59'
        AND substr({t}, 18, 2) <= '59'
        AND (right({shape}, 1) = 'Z'
             OR (substr({t}, length({t}) - 4, 2) <= '23' AND right({t}, 2) <= '59')))"""
    local = (f"CASE WHEN {fractional} THEN (left({t}, 19) || '.' || "
             f"substr({t}, 21, least({digits}, 6)))::timestamp ELSE left({t}, 19)::timestamp END")
    offset = (f"CASE WHEN right({shape}, 1) = 'Z' THEN 0 "
              f"ELSE (CASE WHEN substr({t}, length({t}) - 5, 1) = '-' THEN -1 ELSE 1 END) "
              f"* (substr({t}, length({t}) - 4, 2)::int * 60 + right({t}, 2)::int) END")
    value = f"((({local}) - make_interval(mins => {offset})) AT TIME ZONE 'UTC')"
    return accepted, value


def _count_sql(t: str) -> str:
    # Up to 18 digits always fits a BIGINT; longer ones (leading zeros) are left to Python.
    return f"(length({t}) BETWEEN 1 AND 18 AND translate({t}, '0123456789', '') = '')"


def _parse_sql(source: str) -> str:
    """Every line of `source` (line, f text[]; blank lines left out) into usage_import_rows:
    its values when the query accepts it, only its number otherwise. The OFFSET 0 fences keep
    PostgreSQL from computing a shared expression again at each of its uses."""
    start_ok, start = _time_sql("s")
    end_ok, end = _time_sql("e")
    digits = "'0123456789', '0000000000'"
    return f"""
INSERT INTO usage_import_rows (line, ok, imsi, "end", bytes_up, bytes_down)
SELECT p.line, p.ok, p.imsi, p."end", p.up, p.down
FROM (
    SELECT line, ok AND "end" >= start AND "end" <= CAST(:latest AS timestamptz) AS ok,
           CASE WHEN ok THEN imsi END AS imsi, "end",
           CASE WHEN ok THEN up::bigint END AS up, CASE WHEN ok THEN down::bigint END AS down
    FROM (
        SELECT line, ok, imsi, up, down,
               CASE WHEN ok THEN {start} END AS start, CASE WHEN ok THEN {end} END AS "end"
        FROM (
            SELECT line, imsi, up, down, s, s_shape, e, e_shape,
                   n = 5 AND length(imsi) = 15 AND translate(imsi, '0123456789', '') = ''
                   AND {_count_sql("up")} AND {_count_sql("down")}
                   AND {start_ok} AND {end_ok} AS ok
            FROM (
                SELECT line, cardinality(f) AS n, btrim(f[1], ' ') AS imsi,
                       btrim(f[2], ' ') AS s, translate(btrim(f[2], ' '), {digits}) AS s_shape,
                       btrim(f[3], ' ') AS e, translate(btrim(f[3], ' '), {digits}) AS e_shape,
                       btrim(f[4], ' ') AS up, btrim(f[5], ' ') AS down
                FROM ({source}) AS source
                OFFSET 0
            ) AS split
            OFFSET 0
        ) AS checked
        OFFSET 0
    ) AS timed
    OFFSET 0
) AS p
"""


# The header is line 1: COPY numbered the lines after it from 1.
_LINES = ("SELECT line + 1 AS line, string_to_array(text, ',') AS f FROM usage_import_lines "
          "WHERE translate(text, ' ,', '') <> ''")
_FIELDS = "SELECT line, fields AS f FROM usage_import_fields"

_CHECKED = 'SELECT imsi, "end", bytes_up AS up, bytes_down AS down FROM usage_import_rows'

# Cycles already CLOSED, by the day each begins: usage in one of them is late.
_CLOSED = "closed AS (SELECT account_id, to_date(period, 'YYYY-MM') AS month FROM billing_cycles)"


def _days_sql(source: str) -> str:
    """Fill usage_import_days: the records `source` yields (imsi, end, up, down) added up per
    Thing and UTC day (an IMSI that is no Thing's is left out), each day marked late when its
    cycle is CLOSED, in the order of usage_daily's key."""
    return f"""
WITH {_CLOSED}, per_day AS (
    SELECT imsi, ("end" AT TIME ZONE 'UTC')::date AS day, sum(up) AS up, sum(down) AS down,
           count(*) AS records
    FROM ({source}) AS r
    GROUP BY 1, 2
)
INSERT INTO usage_import_days (thing_id, account_id, day, late, bytes_up, bytes_down, records)
SELECT t.id, t.account_id, d.day, c.month IS NOT NULL, d.up, d.down, d.records
FROM per_day d
JOIN things t ON t.imsi = d.imsi
LEFT JOIN closed c ON c.account_id = t.account_id
                  AND c.month = date_trunc('month', d.day::timestamp)::date
ORDER BY t.id COLLATE "C", d.day
"""


def _records_sql(source: str, late: bool) -> str:
    """The `usage_records` rows for the records `source` yields (an IMSI that is no Thing's is
    left out), in (Thing, time) order, the order of the index on them, and numbered in that
    order for their ids: like `new_id`'s, time-ordered and unguessable (this import's time and
    random prefix, then the number and 32 random bits). Without `late`, none is late."""
    closed, is_late = (f"WITH {_CLOSED}", "c.month IS NOT NULL") if late else ("", "false")
    join = ("LEFT JOIN closed c ON c.account_id = t.account_id "
            "AND c.month = date_trunc('month', r.\"end\" AT TIME ZONE 'UTC')::date") if late else ""
    return f"""
{closed}
SELECT :prefix || lpad(upper(to_hex(row_number() OVER () << 32
                                    | (random() * 4294967295)::bigint)), 16, '0'),
       account_id, thing_id, "end", up, down, late
FROM (
    SELECT t.id AS thing_id, t.account_id, r."end", r.up, r.down, {is_late} AS late
    FROM ({source}) AS r
    JOIN things t ON t.imsi = r.imsi
    {join}
    ORDER BY t.id COLLATE "C", r."end"
) AS sorted
"""


def _add_days_sql(late: bool) -> str:
    """Add usage_import_days to usage_daily; one row per day written. Late days count today,
    so they are added up again first; otherwise the rows are already one per key, in order."""
    days = ("SELECT thing_id, account_id, CASE WHEN late THEN CAST(:today AS date) ELSE day END "
            "AS day, sum(bytes_up) AS bytes_up, sum(bytes_down) AS bytes_down "
            "FROM usage_import_days GROUP BY 1, 2, 3 ORDER BY thing_id COLLATE \"C\", 3"
            if late else "SELECT * FROM usage_import_days")
    return f"""
WITH added AS (
    INSERT INTO usage_daily (thing_id, day, account_id, bytes_up, bytes_down, sms_mt, sms_mo)
    SELECT thing_id, day, account_id, bytes_up, bytes_down, 0, 0 FROM ({days}) AS days
    ON CONFLICT (thing_id, day) DO UPDATE
    SET bytes_up = usage_daily.bytes_up + excluded.bytes_up,
        bytes_down = usage_daily.bytes_down + excluded.bytes_down
    RETURNING 1
)
SELECT count(*) FROM added
"""


def _add_cycles_sql(late: bool) -> str:
    """Add usage_import_days to usage_cycles (billing.rollups), as `_add_days_sql` adds them to
    usage_daily: each Thing's days summed per cycle, late days in today's."""
    day = "CASE WHEN late THEN CAST(:today AS date) ELSE day END" if late else "day"
    return f"""
INSERT INTO usage_cycles (period, thing_id, account_id, bytes_up, bytes_down, sms_mt, sms_mo)
SELECT to_char({day}, 'YYYY-MM'), thing_id, account_id, sum(bytes_up), sum(bytes_down), 0, 0
FROM usage_import_days
GROUP BY 1, 2, 3
ORDER BY 1, 2
ON CONFLICT (period, thing_id) DO UPDATE
SET bytes_up = usage_cycles.bytes_up + excluded.bytes_up,
    bytes_down = usage_cycles.bytes_down + excluded.bytes_down
"""


_TOTALS = """
SELECT coalesce(sum(records), 0), coalesce(sum(records) FILTER (WHERE late), 0),
       (SELECT count(*) FROM (SELECT DISTINCT thing_id FROM usage_import_days) AS things),
       coalesce(sum(bytes_up), 0), coalesce(sum(bytes_down), 0)
FROM usage_import_days
"""


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[phase] = round(time.perf_counter() - start, 3)


def plain_header_length(path: Path, header: list[str]) -> int | None:
    """The bytes before the first data line when line 1 is the header as plain text (with or
    without a BOM), else None: the csv reader then reads the file."""
    with path.open("rb") as handle:
        first = handle.readline(64 * 1024)
    if not first.endswith(b"\n") or any(b in first for b in NOT_PLAIN):
        return None
    try:
        line = first.decode("utf-8-sig").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        return None
    if "\r" in line or [f.strip().lower() for f in line.split(",")] != header:
        return None
    return len(first)


class _NotPlain(Exception):
    pass


def _plain(block: bytes, crlf: bool) -> bool:
    """No byte that COPY would read otherwise than the csv reader, and one kind of line end
    throughout (COPY takes it from the first line and refuses any other)."""
    if any(b in block for b in NOT_PLAIN):
        return False
    if not crlf:
        return b"\r" not in block
    return block.count(b"\r") == block.count(b"\r\n") == block.count(b"\n")


def copy_lines(driver: Any, path: Path, offset: int, progress: Progress) -> bool:
    """COPY the lines after the header as they are, one row each. False, with nothing loaded,
    when the file turns out not to be plain or COPY refuses it (invalid UTF-8)."""
    import psycopg

    statement = ("COPY usage_import_lines (text) FROM STDIN "
                 "WITH (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e')")
    crlf: bool | None = None
    with path.open("rb") as handle, driver.cursor() as cursor:
        handle.seek(offset)
        cursor.execute("SAVEPOINT usage_import_lines")
        try:
            with cursor.copy(statement) as copy:
                carry = b""
                while chunk := handle.read(CHUNK):
                    block = carry + chunk
                    cut = block.rfind(b"\n") + 1
                    block, carry = block[:cut], block[cut:]
                    if not block:
                        continue
                    if crlf is None:
                        crlf = block.find(b"\n") > 0 and block[block.find(b"\n") - 1] == 13
                    if not _plain(block, crlf):
                        raise _NotPlain
                    copy.write(block)
                    progress.advance(len(block))
                if carry:  # the last line, without a line end
                    if any(b in carry for b in NOT_PLAIN) or b"\r" in carry:
                        raise _NotPlain
                    copy.write(carry)
                    progress.advance(len(carry))
        except (_NotPlain, psycopg.errors.DataError):
            # The csv reader reads it (and names what is wrong with it, as on SQLite).
            cursor.execute("ROLLBACK TO SAVEPOINT usage_import_lines")
            return False
        cursor.execute("RELEASE SAVEPOINT usage_import_lines")
    return True


def copy_records(driver: Any, path: Path, header: list[str], progress: Progress) -> None:
    """Any other file: Python's csv reader, as on SQLite (with the same errors), one row per
    record that is not blank, numbered by the line it ends on."""
    with path.open(newline="", encoding="utf-8-sig") as handle, driver.cursor() as cursor:
        reader = csv.reader(handle)
        try:
            first = next(reader, None)
            if first is None:
                raise CliError(f"{path} is empty; its first line must be the header "
                               f"{','.join(header)}")
            if [name.strip().lower() for name in first] != header:
                raise CliError(f"{path}: line 1 must be the header {','.join(header)} "
                               f"(found {','.join(first)!r})")
            with cursor.copy("COPY usage_import_fields (line, fields) FROM STDIN") as copy:
                copy.set_types(["int8", "text[]"])
                for fields in reader:
                    if any(value.strip() for value in fields):
                        copy.write_row((reader.line_num, fields))
        except UnicodeDecodeError as exc:
            raise CliError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except csv.Error as exc:
            raise CliError(f"{path} is not a valid CSV file: {exc}") from None
    progress.advance(path.stat().st_size)


_TEMPORARY_TABLES = (
    "CREATE TEMPORARY TABLE usage_import_records (imsi text, start timestamptz, "
    "\"end\" timestamptz, bytes_up bigint, bytes_down bigint) ON COMMIT DROP",
    "CREATE TEMPORARY TABLE usage_import_lines "
    "(line bigint GENERATED ALWAYS AS IDENTITY, text text) ON COMMIT DROP",
    "CREATE TEMPORARY TABLE usage_import_fields (line bigint, fields text[]) ON COMMIT DROP",
    "CREATE TEMPORARY TABLE usage_import_rows (line bigint, ok boolean, imsi text, "
    "\"end\" timestamptz, bytes_up bigint, bytes_down bigint) ON COMMIT DROP",
    "CREATE TEMPORARY TABLE usage_import_days (thing_id text, account_id text, day date, "
    "late boolean, bytes_up bigint, bytes_down bigint, records bigint) ON COMMIT DROP",
)

# What the fast path writes: the usual records whose IMSI is a Thing's and whose times are in
# order and not in the future (any other is left out, and then the careful path runs).
_USUAL = """
SELECT imsi, "end", bytes_up AS up, bytes_down AS down FROM usage_import_records
WHERE "end" >= start AND "end" <= CAST(:latest AS timestamptz)
"""


def import_file(session: Session, path: Path, now: datetime, header: list[str],
                check_fields: Checker, latest: datetime, progress: Progress) -> Outcome:
    """Check and import the file; with any problem, the Outcome lists them (each with its
    line) and the caller rolls back: nothing is written."""
    outcome = Outcome()
    timings = outcome.timings
    driver = session.connection().connection.driver_connection
    # Sorts and hashes over millions of rows, in memory (this transaction only).
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    # Compiling the long expressions of the careful path would take seconds; interpreted,
    # they cost less.
    session.execute(text("SET LOCAL jit = off"))
    for statement in _TEMPORARY_TABLES:
        session.execute(text(statement))

    offset = plain_header_length(path, header)
    if offset is not None:
        progress.phase(f"Loading {path.name}", path.stat().st_size)
        with _timed(timings, "fast"):
            outcome.fast = _try_fast(session, driver, path, offset, now, latest, progress,
                                     outcome)
        if outcome.fast:
            return outcome

    progress.phase(f"Checking {path.name}", path.stat().st_size)
    with _timed(timings, "load"):
        plain = offset is not None and copy_lines(driver, path, offset, progress)
        if not plain:
            copy_records(driver, path, header, progress)
        session.execute(text(f"ANALYZE usage_import_{'lines' if plain else 'fields'}"))
    with _timed(timings, "check"):
        session.execute(text(_parse_sql(_LINES if plain else _FIELDS)), {"latest": latest})
    with _timed(timings, "recheck"):
        outcome.problems = _recheck(session, plain, now, check_fields)
    if not session.scalar(text("SELECT EXISTS (SELECT FROM usage_import_rows)")):
        raise CliError(f"{path} has no usage lines after the header")
    outcome.problems += [(line, f"line {line}: unknown IMSI {imsi}") for line, imsi in
                         session.execute(text(
                             "SELECT line, imsi FROM usage_import_rows r WHERE ok "
                             "AND NOT EXISTS (SELECT FROM things t WHERE t.imsi = r.imsi)"))]
    if outcome.problems:
        outcome.problems.sort(key=lambda problem: problem[0])
        return outcome
    _lock(session)
    _write(session, driver, _CHECKED, now, {}, outcome, progress)
    return outcome


def _try_fast(session: Session, driver: Any, path: Path, offset: int, now: datetime,
              latest: datetime, progress: Progress, outcome: Outcome) -> bool:
    """The whole import when every record is usual and good; False, with nothing written,
    otherwise."""
    import psycopg

    with driver.cursor() as cursor:
        cursor.execute("SAVEPOINT usage_import_fast")
    try:
        with _timed(outcome.timings, "copy"):
            copied = copy_usual(driver, path, offset, progress)
        done = bool(copied)
        if done:
            session.execute(text("ANALYZE usage_import_records"))
            _lock(session)
            done = _write(session, driver, _USUAL, now, {"latest": latest}, outcome,
                          progress, copied)
    except (DataError, psycopg.DataError):
        # A value PostgreSQL refuses: 30 February, an offset beyond 15:59, mixed line ends.
        done = False
    with driver.cursor() as cursor:
        cursor.execute("RELEASE SAVEPOINT usage_import_fast" if done
                       else "ROLLBACK TO SAVEPOINT usage_import_fast")
    return done


def copy_usual(driver: Any, path: Path, offset: int, progress: Progress) -> int:
    """COPY the records after the header into usage_import_records while each block matches
    the usual shape; the number of records, or 0 as soon as one block does not (the caller
    rolls back)."""
    statement = ('COPY usage_import_records (imsi, start, "end", bytes_up, bytes_down) '
                 "FROM STDIN WITH (FORMAT csv)")
    with path.open("rb") as handle, driver.cursor() as cursor:
        handle.seek(offset)
        with cursor.copy(statement) as copy:
            carry = b""
            line_end = b"\n"
            while chunk := handle.read(CHUNK):
                block = carry + chunk
                cut = block.rfind(b"\n") + 1
                block, carry = block[:cut], block[cut:]
                if block:
                    block = _usual(block)
                    if block is None:
                        return 0
                    copy.write(block)
                    line_end = b"\r\n" if block.endswith(b"\r\n") else b"\n"
                progress.advance(len(chunk))
            if carry:  # the last line, without a line end
                block = _usual(carry + line_end)
                if block is None:
                    return 0
                copy.write(block)
        return cursor.rowcount


def _usual(block: bytes) -> bytes | None:
    """The block without its blank lines when every other line is a usual record, else None."""
    if b"\n\n" in block or b"\n\r\n" in block or block.startswith((b"\n", b"\r\n")):
        block = _BLANK_LINE.sub(b"", block)
    return block if USUAL_LINES.fullmatch(block) is not None else None


def _lock(session: Session) -> None:
    # Closing and a bulk load exclude each other: no cycle closes between the lateness
    # decided here and this transaction's commit.
    advisory_lock(session, CLOSE_LOCK)


def _driver_style(sql: str) -> str:
    """`:name` parameters (SQLAlchemy's) as psycopg's `%(name)s`, for the driver's COPY."""
    return re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", sql)


def _write(session: Session, driver: Any, source: str, now: datetime,
           parameters: dict[str, Any], outcome: Outcome, progress: Progress,
           expected: int | None = None) -> bool:
    """Write the records `source` yields and add them up per Thing and day. With `expected`,
    False (the caller rolls back) when `source` yields another number of records.

    The records go out with COPY TO and back in with COPY FROM (binary, through a temporary
    file): COPY writes a table in batches, where INSERT ... SELECT writes row by row at about
    twice the cost."""
    parameters = {"prefix": new_id("usage")[:-16], "today": now.date(), **parameters}
    progress.phase("Adding up each Thing's days")
    with _timed(outcome.timings, "days"):
        session.execute(text(_days_sql(source)), parameters)
        (outcome.records, outcome.late, outcome.things, outcome.bytes_up,
         outcome.bytes_down) = (int(value) for value in session.execute(text(_TOTALS)).one())
    if expected is not None and outcome.records != expected:
        return False
    late = outcome.late > 0
    progress.phase("Writing usage records")
    with tempfile.TemporaryFile() as spool, driver.cursor() as cursor:
        with _timed(outcome.timings, "records out"):
            with cursor.copy(_driver_style(f"COPY ({_records_sql(source, late)}) TO STDOUT "
                                           "(FORMAT binary)"), parameters) as copy:
                for data in copy:
                    spool.write(data)
        spool.seek(0)
        with _timed(outcome.timings, "records in"):
            with cursor.copy("COPY usage_records (id, account_id, thing_id, recorded_at, "
                             "bytes_up, bytes_down, late) FROM STDIN (FORMAT binary)") as copy:
                while block := spool.read(CHUNK):
                    copy.write(block)
    progress.phase("Adding to usage_daily")
    with _timed(outcome.timings, "daily"):
        outcome.days = session.execute(text(_add_days_sql(late)), parameters).scalar_one()
    with _timed(outcome.timings, "cycles"):
        session.execute(text(_add_cycles_sql(late)), parameters)
    return True


def _recheck(session: Session, plain: bool, now: datetime,
             check_fields: Checker) -> list[tuple[int, str]]:
    """Every line the query did not accept, judged by the row-by-row checks: its problems, or
    its values when it is good after all."""
    if plain:
        query = ("SELECT r.line, l.text FROM usage_import_rows r JOIN usage_import_lines l "
                 "ON l.line = r.line - 1 WHERE NOT r.ok ORDER BY r.line")
    else:
        query = ("SELECT r.line, f.fields FROM usage_import_rows r JOIN usage_import_fields f "
                 "ON f.line = r.line WHERE NOT r.ok ORDER BY r.line")
    problems: list[tuple[int, str]] = []
    good: list[dict[str, Any]] = []
    blank: list[int] = []
    for line, fields in session.execute(text(query)):
        if plain:
            fields = fields.split(",")
        if not any(value.strip() for value in fields):
            blank.append(line)  # whitespace the query does not know as such
            continue
        row, row_problems = check_fields(line, fields, now)
        problems.extend((line, problem) for problem in row_problems)
        if row is not None:
            good.append({"line": line, "imsi": row.imsi, "end": row.end, "up": row.bytes_up,
                         "down": row.bytes_down})
    if good:
        session.execute(text(
            "UPDATE usage_import_rows SET ok = true, imsi = :imsi, \"end\" = :end, "
            "bytes_up = :up, bytes_down = :down WHERE line = :line"), good)
    if blank:
        session.execute(text("DELETE FROM usage_import_rows WHERE line = ANY(:lines)"),
                        {"lines": blank})
    return problems
