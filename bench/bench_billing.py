"""Billing: seconds for one cycle's report of 1,000,000 Things with 30 days of usage.

Product path: `GET /v1/billing/reports?period=...` with `Accept: text/csv` (the whole report, one
line per Thing, no paging) over real HTTP to a `simplane serve` process on PostgreSQL, read to
its last byte with httpx streaming. The report reads the per-cycle roll-up (`usage_cycles`,
one row per Thing per cycle, kept by every usage writer beside `usage_daily`). Baseline, same
database, same run: the bare SQL aggregate of the same figures from the days, the one SELECT
that sums the cycle's `usage_daily` rows (30 per Thing) per Thing with the Thing's ICCID,
every row fetched by a psycopg client; it does not read `usage_cycles`, so the ratio shows
what the roll-up saves. Each is timed `REPEATS` times, alternating; the figures are the
medians.

Data: one account whose tariff has a monthly fee, a per-MB and per-SMS prices; its Things were
shipped before the open cycle, half activated before it began (ACTIVE at its first instant) and
half during it, so every Thing pays the fee through both rules; one `usage_daily` row per Thing
per day of the cycle (30 days, 28 in February; the open cycle is reported because it is the
one rated on request, a closed one reads its frozen lines). The usage rows are written day after
day, as the product writes them, the per-cycle rows then built from them by the product's own
rebuild (`billing.rollups.rebuild`, the SQL of migration 0012: compact, where rows upserted day
by day would leave some dead space for autovacuum to reuse), and the tables vacuumed, as
autovacuum would have.

The report is checked, not only timed: one line per Thing plus the header, every Thing charged
the fee, bytes and SMS summing to the baseline's sums, and every charge equal to the tariff
applied by hand (exact Decimal, half-up) to the baseline's rows.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from bench._data import (
    BENCH_SECRET,
    bench_settings,
    create_tenant,
    insert_daily_usage,
    insert_state_history,
    insert_things,
)
from bench._harness import ROOT, Context, Measurement, free_port, wait_for_port
from simplane.billing.cycles import bounds, period_of
from simplane.core.db import Database
from simplane.models import utcnow

FULL_THINGS = 1_000_000
TARGET_SECONDS = 10.0
REPEATS = 3
MB = Decimal(2**20)

# What `bench_settings` sets, as the environment of a separate `simplane serve` process.
SERVER_ENV = {
    "SIMPLANE_SECRET_KEY": BENCH_SECRET,
    "SIMPLANE_RATE_LIMIT_PER_SECOND": "1000000",
    "SIMPLANE_RATE_LIMIT_BURST": "1000000",
    "SIMPLANE_TOKEN_RATE_LIMIT_PER_MINUTE": "1000000",
    "SIMPLANE_ACCOUNT_IP_SPACE": "10.0.0.0/8",
    "SIMPLANE_ACCOUNT_ALLOCATION_PREFIX": "16",
    "SIMPLANE_DEFAULT_POOL_PREFIX": "16",
    "SIMPLANE_NAT_PUBLIC_RANGE": "198.18.0.0/15",
    "SIMPLANE_RADIUS_ENABLED": "false",  # the report needs no RADIUS listener
    "SIMPLANE_LOG_LEVEL": "WARNING",
}

# Grouped by the Things' key so PostgreSQL knows the ICCID comes with it (grouping by
# (thing_id, iccid) makes it plan for 30,000,000 groups and sort every usage row).
BASELINE_SQL = """
    SELECT t.id, t.iccid, sum(u.bytes_up + u.bytes_down), sum(u.sms_mt), sum(u.sms_mo)
    FROM things t JOIN usage_daily u ON u.thing_id = t.id
    WHERE t.account_id = %(account)s AND u.day >= %(first)s AND u.day < %(end)s
    GROUP BY t.id
"""


@contextmanager
def serve(url: str, work_dir: Path) -> Iterator[str]:
    """`simplane serve` on a free port, from this checkout's sources; its base URL."""
    port = free_port()
    data_dir = work_dir / f"billing-serve-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **SERVER_ENV, "SIMPLANE_DATABASE_URL": url,
           "SIMPLANE_DATA_DIR": str(data_dir),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT),
                                          os.environ.get("PYTHONPATH", "")])}
    log = (work_dir / f"billing-serve-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "simplane.cli.main", "serve", "--host", "127.0.0.1",
         "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def token(base_url: str, client_id: str, client_secret: str) -> str:
    response = httpx.post(f"{base_url}/v1/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": client_id,
        "client_secret": client_secret}, timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def fetch_csv(client: httpx.Client, period: str) -> tuple[float, bytes]:
    """The whole report, read to the last byte; parsing waits until the clock has stopped."""
    chunks = []
    start = time.perf_counter()
    with client.stream("GET", "/v1/billing/reports", params={"period": period},
                       headers={"Accept": "text/csv"}) as response:
        if response.status_code != 200:
            response.read()
            raise RuntimeError(f"report answered {response.status_code}: {response.text[:500]}")
        for chunk in response.iter_raw():
            chunks.append(chunk)
    return time.perf_counter() - start, b"".join(chunks)


def sql_aggregate(dsn: str, params: dict) -> tuple[float, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        # The session the product's report runs in (billing.rating.for_reports): JIT off.
        conn.execute("SET jit = off")
        start = time.perf_counter()
        rows = conn.execute(BASELINE_SQL, params).fetchall()
        elapsed = time.perf_counter() - start
        conn.rollback()
    return elapsed, rows


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def check(body: bytes, baseline: list[tuple], things: int, tariff: dict[str, Decimal]) -> dict:
    """The report is the right one: every line and charge worked out again from the baseline."""
    lines = body.decode().split("\r\n")
    assert lines[-1] == "", "the report ends with a line break"
    header, rows = lines[0], lines[1:-1]
    assert header.startswith("thing_id,iccid,things_group_id,monthly_fee,data_bytes"), header
    assert len(rows) == things, f"{len(rows)} lines for {things} Things"
    assert len(baseline) == things, f"the baseline has {len(baseline)} rows for {things} Things"
    expected = {r[0]: r for r in baseline}
    fee = money(tariff["monthly_fee"])
    sums = {"data_bytes": 0, "sms_mt": 0, "sms_mo": 0, "total": Decimal(0)}
    for row in rows:
        (thing_id, iccid, _group, monthly_fee, data_bytes, data_charge, sms_mt, sms_mo,
         sms_charge, total) = row.split(",")
        _, want_iccid, want_bytes, want_mt, want_mo = expected.pop(thing_id)
        assert (iccid, int(data_bytes), int(sms_mt), int(sms_mo)) == \
            (want_iccid, want_bytes, want_mt, want_mo), row
        want_data = money(Decimal(want_bytes) * tariff["price_per_mb"] / MB)
        want_sms = money(want_mt * tariff["price_per_sms_mt"] + want_mo * tariff["price_per_sms_mo"])
        assert (Decimal(monthly_fee), Decimal(data_charge), Decimal(sms_charge)) == \
            (fee, want_data, want_sms), row
        assert Decimal(total) == fee + want_data + want_sms, row
        sums["data_bytes"] += int(data_bytes)
        sums["sms_mt"] += int(sms_mt)
        sums["sms_mo"] += int(sms_mo)
        sums["total"] += Decimal(total)
    assert not expected, f"{len(expected)} Things missing from the report"
    return {**sums, "total": str(sums["total"]), "bytes": len(body), "lines": len(rows) + 1}


def run(ctx: Context) -> list[Measurement]:
    things = ctx.size(FULL_THINGS)
    now = utcnow()
    period = period_of(now)
    start, end = bounds(period)
    days = min(30, (end - start).days)
    with ctx.postgres("billing") as url:
        database = Database(url)
        try:
            tenant = create_tenant(database, bench_settings(url))
            shipped = start - timedelta(days=20)
            clock = time.perf_counter()
            insert_things(database, tenant, things, state="ACTIVE", created=shipped)
            insert_state_history(database, tenant, [
                [("PROVISIONED", shipped), ("ACTIVE", start - timedelta(days=10))],
                [("PROVISIONED", shipped), ("ACTIVE", start + timedelta(days=2, hours=7))],
            ])
            usage_rows = insert_daily_usage(database, tenant, start.date(), days)
            with database.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT") as conn:
                # What autovacuum would have done to tables of this age (visibility map, stats).
                for table in ("things", "thing_state_changes", "usage_daily", "usage_cycles"):
                    conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
            seeded = time.perf_counter() - clock
            with database.engine.connect() as conn:
                tariff = dict(conn.exec_driver_sql(
                    "SELECT monthly_fee, price_per_mb, price_per_sms_mt, price_per_sms_mo "
                    "FROM tariffs WHERE account_id = %(a)s", {"a": tenant.account_id}
                ).mappings().one())
        finally:
            database.dispose()

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        params = {"account": tenant.account_id, "first": start.date(), "end": end.date()}
        ours: list[float] = []
        bare: list[float] = []
        with serve(url, ctx.work_dir) as base_url:
            bearer = token(base_url, tenant.client_id, tenant.client_secret)
            with httpx.Client(base_url=base_url, timeout=httpx.Timeout(600.0),
                              headers={"Authorization": f"Bearer {bearer}"}) as client:
                for _ in range(REPEATS):
                    seconds, rows = sql_aggregate(dsn, params)
                    bare.append(seconds)
                    seconds, body = fetch_csv(client, period)
                    ours.append(seconds)
        verified = check(body, rows, things, tariff)

    full = ctx.scale == 1
    details = {
        "things": things, "days": days, "usage_daily_rows": usage_rows, "period": period,
        "repeats": REPEATS, "report_seconds": [round(s, 3) for s in ours],
        "sql_aggregate_seconds": [round(s, 3) for s in bare], "seed_seconds": round(seeded, 1),
        "csv_bytes": verified["bytes"], "csv_lines": verified["lines"],
        "sums": {k: verified[k] for k in ("data_bytes", "sms_mt", "sms_mo", "total")},
        "path": "GET /v1/billing/reports Accept: text/csv over HTTP to `simplane serve`",
        "baseline": "SELECT t.id, t.iccid, sum(...) FROM things t JOIN usage_daily u "
                    "GROUP BY t.id (psycopg fetchall, jit off as in the product); the report "
                    "reads usage_cycles",
        "target": f"<= {TARGET_SECONDS:g} s" + ("" if full else
                                                  f" applies at scale 1 only (scale {ctx.scale:g})"),
    }
    return [Measurement(
        benchmark=f"billing report {things:,} Things x {days} days", engine="postgresql",
        figure=statistics.median(ours), unit="s",
        baseline=statistics.median(bare), baseline_name="bare SQL aggregate",
        higher_is_better=False, target_ratio=None,
        target_max=TARGET_SECONDS if full else None, details=details)]
