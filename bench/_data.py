"""Data generators: accounts made by the product's own service, and the bulk rows (Things, tags,
usage) written set-based, so 1,000,000 Things or 10,000,000 usage records take minutes.

Things are written with COPY on PostgreSQL (ids made by `new_id`, like the product's own) and
with executemany on SQLite. Usage files are in the `simplane usage import` format.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, text

from simplane.accounts.service import Tariff, create_account
from simplane.core.config import Settings, load_settings
from simplane.core.db import Database
from simplane.core.ids import new_id
from simplane.models import ThingsGroup

BENCH_SECRET = "bench-secret-key-not-for-production"


def bench_settings(url: str, **overrides: object) -> Settings:
    """Settings for a benchmark database: limits out of the way (the figure is the product's
    throughput, not its rate limiter), a /8 of account space so a /16 per account fits."""
    return load_settings(**{
        "database_url": url, "secret_key": BENCH_SECRET,
        "rate_limit_per_second": 1_000_000, "rate_limit_burst": 1_000_000,
        "token_rate_limit_per_minute": 1_000_000,
        "account_ip_space": "10.0.0.0/8", "account_allocation_prefix": 16,
        "default_pool_prefix": 16, "nat_public_range": "198.18.0.0/15", **overrides})


@dataclass
class Tenant:
    account_id: str
    client_id: str
    client_secret: str
    group_id: str
    network_id: str


def create_tenant(database: Database, settings: Settings, name: str = "bench",
                  tariff: Tariff | None = None) -> Tenant:
    with database.transaction() as session:
        created = create_account(session, settings, name=name,
                                 admin_email=f"admin-{new_id('user').lower()}@bench.example",
                                 tariff=tariff or Tariff(monthly_fee=Decimal("1.00"),
                                                         price_per_mb=Decimal("0.0100"),
                                                         price_per_sms_mt=Decimal("0.05"),
                                                         price_per_sms_mo=Decimal("0.02")))
        group = session.scalar(select(ThingsGroup).where(
            ThingsGroup.account_id == created.account.id, ThingsGroup.is_default.is_(True)))
        assert group is not None
        return Tenant(created.account.id, created.client_id, created.client_secret, group.id,
                      group.network_id)


def iccid(n: int) -> str:
    return f"8988{n:015d}"


def imsi(n: int) -> str:
    return f"90170{n:010d}"


_THING_COLUMNS = ["id", "account_id", "iccid", "imsi", "name", "state", "things_group_id",
                  "service_data", "service_sms", "imei_lock", "ip_locked", "connection_status",
                  "created_at", "updated_at", "activated_at"]


def _thing_rows(tenant: Tenant, first: int, count: int, state: str,
                now: datetime) -> Iterator[tuple]:
    activated = now if state == "ACTIVE" else None
    for n in range(first, first + count):
        yield (new_id("thing"), tenant.account_id, iccid(n), imsi(n), f"sensor-{n}", state,
               tenant.group_id, True, True, False, False, "NEVER", now, now, activated)


def insert_things(database: Database, tenant: Tenant, count: int, *, first: int = 0,
                  state: str = "PROVISIONED", tag: str | None = None,
                  chunk: int = 200_000) -> list[str]:
    """`count` Things numbered from `first` (ICCID/IMSI derive from the number); their ids in
    number order. With `tag`, each carries it."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids: list[str] = []
    for start in range(first, first + count, chunk):
        rows = list(_thing_rows(tenant, start, min(chunk, first + count - start), state, now))
        ids.extend(r[0] for r in rows)
        tags = [(r[0], tag, tenant.account_id) for r in rows] if tag else []
        if database.is_postgres:
            _copy(database, "things", _THING_COLUMNS, rows)
            if tags:
                _copy(database, "thing_tags", ["thing_id", "tag", "account_id"], tags)
        else:
            with database.engine.begin() as conn:
                placeholders = ", ".join(f":{c}" for c in _THING_COLUMNS)
                conn.execute(text(f"INSERT INTO things ({', '.join(_THING_COLUMNS)}) "
                                  f"VALUES ({placeholders})"),
                             [dict(zip(_THING_COLUMNS, r, strict=True)) for r in rows])
                if tags:
                    conn.execute(text("INSERT INTO thing_tags (thing_id, tag, account_id) "
                                      "VALUES (:t, :g, :a)"),
                                 [{"t": t, "g": g, "a": a} for t, g, a in tags])
    if database.is_postgres:
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE things"))
            conn.execute(text("ANALYZE thing_tags"))
    return ids


def _copy(database: Database, table: str, columns: list[str], rows: list[tuple]) -> None:
    raw = database.engine.raw_connection()
    try:
        with raw.cursor() as cursor:  # type: ignore[attr-defined]
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def write_usage_file(path: Path, imsis: list[str], records: int, first_day: date, days: int,
                     seed: int = 7) -> Path:
    """`records` rows of the `simplane usage import` format spread over the Things and days;
    each a 5-minute session ending within its day."""
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["imsi", "start", "end", "bytes_up", "bytes_down"])
        buffer = io.StringIO()
        batch = csv.writer(buffer)
        for i in range(records):
            day = first_day + timedelta(days=i % days)
            second = rng.randrange(300, 86_000)
            end = datetime(day.year, day.month, day.day) + timedelta(seconds=second)
            start = end - timedelta(seconds=300)
            batch.writerow([imsis[i % len(imsis)], start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            end.strftime("%Y-%m-%dT%H:%M:%SZ"), rng.randrange(1, 200_000),
                            rng.randrange(1, 2_000_000)])
            if i % 100_000 == 99_999:
                handle.write(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
        handle.write(buffer.getvalue())
    return path


def insert_daily_usage(database: Database, tenant: Tenant, first_day: date, days: int) -> int:
    """One roll-up row per Thing of the tenant per day (what `days` of traffic leave behind),
    set-based: the figure the billing report reads. PostgreSQL only."""
    assert database.is_postgres
    with database.engine.begin() as conn:
        # The rows are valid by construction: skip the per-row foreign-key triggers (bench
        # databases only; needs the superuser the benchmarks run as).
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        result = conn.execute(text("""
            INSERT INTO usage_daily (thing_id, day, account_id, bytes_up, bytes_down, sms_mt, sms_mo)
            SELECT t.id, d::date, t.account_id, (random() * 200000)::bigint,
                   (random() * 5000000)::bigint, (random() * 2)::int, (random() * 1)::int
            FROM things t
            CROSS JOIN generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') d
            WHERE t.account_id = :account
        """), {"first": first_day, "last": first_day + timedelta(days=days - 1),
               "account": tenant.account_id})
        conn.execute(text("ANALYZE usage_daily"))
        return result.rowcount
