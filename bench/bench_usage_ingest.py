"""Usage ingest: records/s of `simplane usage import FILE` on PostgreSQL, beside a plain COPY of
the same file (spec operations.md §5).

The product path is the operator's: the `simplane` entry point run as its own process with
SIMPLANE_DATABASE_URL, importing a CSV in the import format. The baseline, in the same database
and the same run, is PostgreSQL `COPY ... FROM STDIN (FORMAT csv, HEADER)` of that very file,
streamed by psycopg into a table shaped like `usage_records` (the file's columns, an identity
primary key and the (imsi, end) index that stands for (thing_id, recorded_at)), once before
the import and once after it, the faster of the two counting. The baseline does no checking,
no IMSI lookup and no roll-up: it is the floor for moving the bytes in.

Seed: one account with 100,000 ACTIVE Things (times scale) and a file of 10,000,000 records
(times scale) spread over whole past days of the current billing cycle (nothing in the future,
nothing late), over a number of days coprime with the Things so every Thing has usage on every
day, as a mediation export would. Afterwards the import is checked against the COPY-loaded
file: the record count, every Thing's every day's byte sums in `usage_daily`, and every Thing's
cycle in `usage_cycles` equal to the sum of its days.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from bench._data import bench_settings, create_tenant, imsi, insert_things, write_usage_file
from bench._harness import ROOT, Context, Measurement
from simplane.core.db import Database

RECORDS = 10_000_000
THINGS = 100_000
CHUNK = 1 << 20

STAGING = """
CREATE TABLE usage_staging (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    imsi varchar(15) NOT NULL,
    start timestamptz NOT NULL,
    "end" timestamptz NOT NULL,
    bytes_up bigint NOT NULL,
    bytes_down bigint NOT NULL
);
CREATE INDEX ix_usage_staging_imsi_end ON usage_staging (imsi, "end");
"""


def usage_days(now: datetime, things: int) -> tuple[date, int]:
    """Whole past days of the open cycle (today is not over: its rows could lie in the future),
    as many as fit and coprime with `things`. On the 1st, last month: in a fresh database no
    cycle is closed, so it is still open."""
    today = now.date()
    first = today.replace(day=1)
    available = today.day - 1
    if available == 0:
        first = (first - timedelta(days=1)).replace(day=1)
        available = (today - first).days
    days = next(d for d in range(available, 0, -1) if math.gcd(d, things) == 1)
    return first, days


def copy_file(url: str, path: Path) -> float:
    """The baseline: COPY the file as it is, streamed in 1 MiB chunks, one transaction."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("CHECKPOINT")
        start = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(
                'COPY usage_staging (imsi, start, "end", bytes_up, bytes_down) '
                "FROM STDIN WITH (FORMAT csv, HEADER)") as copy, path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                copy.write(chunk)
        conn.commit()
        return time.perf_counter() - start


def import_file(url: str, path: Path, work_dir: Path) -> tuple[float, dict]:
    """The product: `simplane usage import FILE --json` as its own process."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    # DEBUG: the import logs the time of each of its phases (one JSON line on stderr).
    env = {**os.environ, "SIMPLANE_DATABASE_URL": url, "SIMPLANE_DATA_DIR": str(work_dir),
           "SIMPLANE_LOG_LEVEL": "DEBUG",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT),
                                          os.environ.get("PYTHONPATH", "")])}
    simplane = Path(sys.executable).with_name("simplane")
    start = time.perf_counter()
    result = subprocess.run([str(simplane), "usage", "import", str(path), "--json"], env=env,
                            capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"simplane usage import failed ({result.returncode}): "
                           f"{result.stderr.strip()[:2000]}")
    summary = json.loads(result.stdout)
    for line in result.stderr.splitlines():
        try:
            logged = json.loads(line)
        except ValueError:
            continue
        if logged.get("logger") == "simplane.usage":
            summary["phase_seconds"] = logged.get("seconds")
            summary["path"] = "fast" if logged.get("fast") else "careful"
    return elapsed, summary


def verify(database: Database, account_id: str, records: int) -> dict:
    """The import against the file as COPY loaded it: every record, every Thing's every day."""
    with database.engine.connect() as conn:
        imported = conn.execute(text("SELECT count(*), count(*) FILTER (WHERE late) "
                                     "FROM usage_records WHERE account_id = :a"),
                                {"a": account_id}).one()
        copied = conn.execute(text("SELECT count(*), sum(bytes_up), sum(bytes_down) "
                                   "FROM usage_staging")).one()
        daily = conn.execute(text("SELECT count(*), sum(bytes_up), sum(bytes_down) "
                                  "FROM usage_daily WHERE account_id = :a"),
                             {"a": account_id}).one()
        mismatched = conn.execute(text("""
            WITH file AS (
                SELECT t.id AS thing_id, (s."end" AT TIME ZONE 'UTC')::date AS day,
                       sum(s.bytes_up) AS up, sum(s.bytes_down) AS down
                FROM usage_staging s JOIN things t ON t.imsi = s.imsi
                GROUP BY 1, 2)
            SELECT count(*) FROM file
            FULL JOIN (SELECT * FROM usage_daily WHERE account_id = :a) d
                   ON d.thing_id = file.thing_id AND d.day = file.day
            WHERE d.bytes_up IS DISTINCT FROM file.up OR d.bytes_down IS DISTINCT FROM file.down
        """), {"a": account_id}).scalar_one()
        # The per-cycle roll-up the report reads: each Thing's cycle, the sum of its days.
        cycles_off = conn.execute(text("""
            WITH days AS (
                SELECT to_char(day, 'YYYY-MM') AS period, thing_id, sum(bytes_up) AS up,
                       sum(bytes_down) AS down
                FROM usage_daily WHERE account_id = :a GROUP BY 1, 2)
            SELECT count(*) FROM days
            FULL JOIN (SELECT * FROM usage_cycles WHERE account_id = :a) c
                   ON c.period = days.period AND c.thing_id = days.thing_id
            WHERE c.bytes_up IS DISTINCT FROM days.up OR c.bytes_down IS DISTINCT FROM days.down
        """), {"a": account_id}).scalar_one()
    problems = []
    if imported[0] != records or copied[0] != records:
        problems.append(f"{imported[0]} records imported and {copied[0]} copied, not {records}")
    if imported[1]:
        problems.append(f"{imported[1]} records marked late")
    if (daily[1], daily[2]) != (copied[1], copied[2]):
        problems.append(f"usage_daily sums {daily[1]}/{daily[2]} != file {copied[1]}/{copied[2]}")
    if mismatched:
        problems.append(f"{mismatched} (Thing, day) roll-ups differ from the file")
    if cycles_off:
        problems.append(f"{cycles_off} (Thing, cycle) roll-ups differ from their days")
    if problems:
        raise RuntimeError("usage import verification failed: " + "; ".join(problems))
    return {"daily_rows": daily[0], "bytes_up": int(daily[1]), "bytes_down": int(daily[2])}


def run(ctx: Context) -> list[Measurement]:
    records, things = ctx.size(RECORDS), ctx.size(THINGS, 10)
    with ctx.postgres("usage") as url:
        settings = bench_settings(url)
        database = Database(url)
        try:
            tenant = create_tenant(database, settings)
            insert_things(database, tenant, things, state="ACTIVE")
            first_day, days = usage_days(datetime.now(UTC), things)
            path = ctx.work_dir / "usage.csv"
            clock = time.perf_counter()
            write_usage_file(path, [imsi(n) for n in range(things)], records, first_day, days)
            written = time.perf_counter() - clock
            file_mb = round(path.stat().st_size / 1e6, 1)
            with database.engine.begin() as conn:
                for statement in STAGING.split(";"):
                    if statement.strip():
                        conn.execute(text(statement))

            copies = [copy_file(url, path)]
            import_seconds, summary = import_file(url, path, ctx.work_dir)
            if summary["imported"] != records or summary["late"] or summary.get("path") != "fast":
                raise RuntimeError(f"unexpected import summary {summary}")
            checked = verify(database, tenant.account_id, records)
            # The machine is shared and noisy: COPY runs again after the import and the
            # faster of the two is the baseline (never the slower).
            with database.engine.begin() as conn:
                conn.execute(text("TRUNCATE usage_staging"))
            copies.append(copy_file(url, path))
            copy_seconds = min(copies)
        finally:
            database.dispose()
            Path(ctx.work_dir / "usage.csv").unlink(missing_ok=True)

    return [Measurement(
        benchmark=f"usage ingest {records:,} records", engine="postgresql",
        figure=records / import_seconds, unit="records/s", baseline=records / copy_seconds,
        baseline_name="COPY of the same file", higher_is_better=True, target_ratio=0.5,
        details={"records": records, "things": things, "first_day": first_day.isoformat(),
                 "days": days, "file_mb": file_mb, "file_written_seconds": round(written, 1),
                 "import_seconds": round(import_seconds, 2),
                 "copy_seconds": [round(seconds, 2) for seconds in copies],
                 "import_summary": summary, **checked})]
