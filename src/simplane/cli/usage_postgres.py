"""`simplane usage import` on PostgreSQL: the file goes in with COPY and is checked, attributed
and rolled up set-based, in the import's one transaction. Same rules, same messages as the
row-by-row path in cli/usage.py (which SQLite uses); 10,000,000 records never pass through
Python one by one.

1. Load: a plain file (no quotes, backslashes, NULs or stray carriage returns: what mediation
   systems write) is COPYed byte for byte into a temporary table, one row per line, COPY
   numbering them; any other file goes through Python's csv reader, one row per record.
2. Check: one query splits every line and accepts what the row-by-row checks accept, with the
   same values (plain digits, the usual RFC 3339 shapes). Every line it does not accept, good
   or bad, is judged by those very checks (`check_fields`), so the messages are theirs and a
   line the query cannot read (a tab around a field, an offset written +05:60) still counts.
   The same query finds each record's Thing by IMSI.
3. Write, under the close lock: one INSERT ... SELECT into `usage_records` and one
   INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE into `usage_daily`.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
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
    its values and Thing when the query accepts it, only its number otherwise. The OFFSET 0
    fences keep PostgreSQL from computing each shared expression once per use."""
    start_ok, start = _time_sql("s")
    end_ok, end = _time_sql("e")
    digits = "'0123456789', '0000000000'"
    return f"""
INSERT INTO usage_import_rows (line, ok, imsi, thing_id, account_id, "end", bytes_up, bytes_down)
SELECT p.line, p.ok, p.imsi, t.id, t.account_id, p."end", p.up, p.down
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
LEFT JOIN things t ON t.imsi = p.imsi
"""


# The header is line 1: COPY numbered the lines after it from 1.
_LINES = ("SELECT line + 1 AS line, string_to_array(text, ',') AS f FROM usage_import_lines "
          "WHERE translate(text, ' ,', '') <> ''")
_FIELDS = "SELECT line, fields AS f FROM usage_import_fields"

# The common case, a plain file of valid lines written the usual way, in one pass with
# PostgreSQL's own input functions. A line is taken only when writing its values back gives the
# very text of the line (so it is what the row-by-row checks accept, with the same values);
# the others are left out, and any value those functions refuse fails the statement: then
# the careful path runs instead (`import_file` compares the count).
_FAST = """
SELECT t.id AS thing_id, t.account_id, p."end", p.up, p.down
FROM (
    SELECT imsi, "end", up, down,
           cardinality(f) = 5 AND "end" >= start AND "end" <= CAST(:latest AS timestamptz)
           AND up >= 0 AND down >= 0 AND f[4] = up::text AND f[5] = down::text
           AND f[2] = to_char(start, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
           AND f[3] = to_char("end", 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS ok
    FROM (
        SELECT f, f[1] AS imsi, f[2]::timestamptz AS start, f[3]::timestamptz AS "end",
               f[4]::bigint AS up, f[5]::bigint AS down
        FROM (SELECT string_to_array(text, ',') AS f FROM usage_import_lines
              WHERE text IS NOT NULL) AS lines
        OFFSET 0
    ) AS typed
    OFFSET 0
) AS p
JOIN things t ON t.imsi = p.imsi
WHERE p.ok
"""

_CHECKED = ('SELECT thing_id, account_id, "end", bytes_up AS up, bytes_down AS down '
            "FROM usage_import_rows")


def _write_sql(source: str) -> str:
    """Write the records `source` yields (thing_id, account_id, end, up, down) and add them
    up per Thing and day; one row of totals. Records are written in (Thing, time) order, the
    order of the index on them, and numbered in that order for their ids."""
    return f"""
WITH closed AS (
    -- Cycles already CLOSED, as the instant each begins: their records are late.
    SELECT account_id, CAST(period || '-01T00:00:00Z' AS timestamptz) AS month
    FROM billing_cycles
), records AS (
    INSERT INTO usage_records (id, account_id, thing_id, recorded_at, bytes_up, bytes_down, late)
    SELECT :prefix || lpad(upper(to_hex(row_number() OVER () << 32
                                        | (random() * 4294967295)::bigint)), 16, '0'),
           account_id, thing_id, "end", up, down, late
    FROM (
        SELECT r.thing_id, r.account_id, r."end", r.up, r.down, c.month IS NOT NULL AS late
        FROM ({source}) AS r
        LEFT JOIN closed c ON c.account_id = r.account_id
                          AND c.month = date_trunc('month', r."end", 'UTC')
        ORDER BY r.thing_id COLLATE "C", r."end"
    ) AS sorted
    RETURNING thing_id, account_id, recorded_at, bytes_up, bytes_down, late
), days AS (
    SELECT thing_id, account_id,
           CASE WHEN late THEN CAST(:today AS date)
                ELSE (recorded_at AT TIME ZONE 'UTC')::date END AS day,
           sum(bytes_up) AS bytes_up, sum(bytes_down) AS bytes_down,
           count(*) AS records, count(*) FILTER (WHERE late) AS late
    FROM records
    GROUP BY 1, 2, 3
), added AS (
    INSERT INTO usage_daily (thing_id, day, account_id, bytes_up, bytes_down, sms_mt, sms_mo)
    SELECT thing_id, day, account_id, bytes_up, bytes_down, 0, 0 FROM days
    ORDER BY thing_id COLLATE "C", day
    ON CONFLICT (thing_id, day) DO UPDATE
    SET bytes_up = usage_daily.bytes_up + excluded.bytes_up,
        bytes_down = usage_daily.bytes_down + excluded.bytes_down
)
SELECT coalesce(sum(records), 0), coalesce(sum(late), 0), count(DISTINCT thing_id), count(*),
       coalesce(sum(bytes_up), 0), coalesce(sum(bytes_down), 0)
FROM days
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


def import_file(session: Session, path: Path, now: datetime, header: list[str],
                check_fields: Checker, latest: datetime, progress: Progress) -> Outcome:
    """Check and import the file; with any problem, the Outcome lists them and nothing is
    written (the caller rolls back)."""
    outcome = Outcome()
    timings = outcome.timings
    driver = session.connection().connection.driver_connection
    # Sorts and hashes over millions of rows: memory, not temporary files (this transaction
    # only; temporary tables then live in this backend's buffers as far as they fit).
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    # Compiling the long expressions below would take seconds; they run fine interpreted.
    session.execute(text("SET LOCAL jit = off"))
    # to_char below writes instants back in UTC.
    session.execute(text("SET LOCAL TimeZone = 'UTC'"))
    for statement in (
            "CREATE TEMPORARY TABLE usage_import_lines "
            "(line bigint GENERATED ALWAYS AS IDENTITY, text text) ON COMMIT DROP",
            "CREATE TEMPORARY TABLE usage_import_fields (line bigint, fields text[]) "
            "ON COMMIT DROP",
            "CREATE TEMPORARY TABLE usage_import_rows (line bigint, ok boolean, imsi text, "
            "thing_id text, account_id text, \"end\" timestamptz, bytes_up bigint, "
            "bytes_down bigint) ON COMMIT DROP"):
        session.execute(text(statement))

    progress.phase(f"Loading {path.name}", path.stat().st_size)
    with _timed(timings, "load"):
        offset = plain_header_length(path, header)
        plain = offset is not None and copy_lines(driver, path, offset, progress)
        if not plain:
            copy_records(driver, path, header, progress)
    session.execute(text(f"ANALYZE {'usage_import_lines' if plain else 'usage_import_fields'}"))
    if plain:
        # Optimistic: most files are plain and valid; one statement checks and writes them.
        progress.phase("Importing")
        with _timed(timings, "fast"):
            _lock(session)
            fast = _try_fast(session, now, latest, outcome)
        if fast:
            return outcome

    progress.phase("Checking")
    with _timed(timings, "check"):
        session.execute(text(_parse_sql(_LINES if plain else _FIELDS)), {"latest": latest})
    with _timed(timings, "recheck"):
        outcome.problems = _recheck(session, plain, now, check_fields)
    if not session.scalar(text("SELECT EXISTS (SELECT FROM usage_import_rows)")):
        raise CliError(f"{path} has no usage lines after the header")
    outcome.problems += [(line, f"line {line}: unknown IMSI {imsi}") for line, imsi in session.execute(text(
        "SELECT line, imsi FROM usage_import_rows WHERE ok AND thing_id IS NULL"))]
    if outcome.problems:
        outcome.problems.sort(key=lambda problem: problem[0])
        return outcome
    _lock(session)
    progress.phase("Importing")
    with _timed(timings, "write"):
        _write(session, _CHECKED, now, {}, outcome)
    return outcome


def _lock(session: Session) -> None:
    # Closing and a bulk load exclude each other: no cycle closes between the lateness
    # decided here and this transaction's commit.
    advisory_lock(session, CLOSE_LOCK)


def _write(session: Session, source: str, now: datetime, parameters: dict[str, Any],
           outcome: Outcome) -> None:
    # Ids like `new_id`'s, time-ordered and unguessable: this import's time and random prefix,
    # then the record's number and 32 random bits.
    totals = session.execute(text(_write_sql(source)), {
        "prefix": new_id("usage")[:-16], "today": now.date(), **parameters}).one()
    (outcome.records, outcome.late, outcome.things, outcome.days, outcome.bytes_up,
     outcome.bytes_down) = (int(value) for value in totals)


def _try_fast(session: Session, now: datetime, latest: datetime, outcome: Outcome) -> bool:
    """The whole import in one statement when every line is plain, valid and written the
    usual way; False, with nothing written, otherwise."""
    lines = session.scalar(text("SELECT count(*) FROM usage_import_lines WHERE text IS NOT NULL"))
    if not lines:
        return False
    try:
        with session.begin_nested():
            _write(session, _FAST, now, {"latest": latest}, outcome)
            if outcome.records != lines:
                raise _NotPlain
    except (_NotPlain, DataError):
        return False
    return True


def _recheck(session: Session, plain: bool, now: datetime,
             check_fields: Checker) -> list[tuple[int, str]]:
    """Every line the query did not accept, judged by the row-by-row checks: its problems, or
    its values (and Thing) when it is good after all. (rescued lines, problems)."""
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
            "UPDATE usage_import_rows r SET ok = true, imsi = :imsi, \"end\" = :end, "
            "bytes_up = :up, bytes_down = :down, thing_id = t.id, account_id = t.account_id "
            "FROM (SELECT CAST(:imsi AS text) AS imsi) i LEFT JOIN things t ON t.imsi = i.imsi "
            "WHERE r.line = :line"), good)
    if blank:
        session.execute(text("DELETE FROM usage_import_rows WHERE line = ANY(:lines)"),
                        {"lines": blank})
    return problems
