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
from simplane.billing import rollups
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
                now: datetime, created: datetime) -> Iterator[tuple]:
    activated = created if state == "ACTIVE" else None
    for n in range(first, first + count):
        yield (new_id("thing"), tenant.account_id, iccid(n), imsi(n), f"sensor-{n}", state,
               tenant.group_id, True, True, False, False, "NEVER", created, now, activated)


def insert_things(database: Database, tenant: Tenant, count: int, *, first: int = 0,
                  state: str = "PROVISIONED", tag: str | None = None,
                  created: datetime | None = None, chunk: int = 200_000) -> list[str]:
    """`count` Things numbered from `first` (ICCID/IMSI derive from the number); their ids in
    number order. With `tag`, each carries it; `created` (UTC) back-dates them (billing asks
    what existed before a cycle began), else they are created now."""
    now = datetime.now(UTC).replace(microsecond=0)
    created = created or now
    if not database.is_postgres:  # SQLite keeps UTC instants naive (see UTCDateTime)
        now, created = now.replace(tzinfo=None), created.astimezone(UTC).replace(tzinfo=None)
    ids: list[str] = []
    for start in range(first, first + count, chunk):
        rows = list(_thing_rows(tenant, start, min(chunk, first + count - start), state, now,
                                created))
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
    set-based, and the Things' per-cycle roll-up built from them: what the billing report
    reads. PostgreSQL only.

    Written day after day, as the product writes them (a day's roll-ups appear during that
    day), so a report is not flattered by rows lying Thing by Thing on disk."""
    assert database.is_postgres
    rows = 0
    with database.engine.begin() as conn:
        # The rows are valid by construction: skip the per-row foreign-key triggers (bench
        # databases only; needs the superuser the benchmarks run as).
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        # Rows arriving day after day land all over the (thing_id, day) key: building the
        # indexes once afterwards is many times faster than maintaining them row by row.
        primary = conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'usage_daily'::regclass AND contype = 'p'")).one()
        indexes = conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'usage_daily' "
            "AND indexname <> :primary"), {"primary": primary[0]}).all()
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        conn.execute(text(f'ALTER TABLE usage_daily DROP CONSTRAINT "{primary[0]}"'))
        for offset in range(days):
            result = conn.execute(text("""
                INSERT INTO usage_daily (thing_id, day, account_id, bytes_up, bytes_down,
                                         sms_mt, sms_mo)
                SELECT t.id, CAST(:day AS date), t.account_id, (random() * 200000)::bigint,
                       (random() * 5000000)::bigint, (random() * 2)::int, (random() * 1)::int
                FROM things t
                WHERE t.account_id = :account
            """), {"day": first_day + timedelta(days=offset), "account": tenant.account_id})
            rows += result.rowcount
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        conn.execute(text(f'ALTER TABLE usage_daily ADD CONSTRAINT "{primary[0]}" {primary[1]}'))
        for _, definition in indexes:
            conn.execute(text(definition))
        conn.execute(text("ANALYZE usage_daily"))
    # The per-cycle roll-up the report reads (usage_cycles), which every usage writer keeps
    # beside the days, worked out from them by the product's own set-based rebuild: the same
    # rows, compact, as migration 0012 leaves them. (Written as ingest does, an upsert per
    # Thing per day in this one transaction, it took 45 s a day here.)
    with database.transaction() as session:
        rollups.rebuild(session, tenant.account_id)
    return rows


def insert_state_history(database: Database, tenant: Tenant,
                         histories: list[list[tuple[str, datetime]]]) -> int:
    """The state history billing reads (`thing_state_changes`), set-based, for every Thing of
    the tenant: Thing number k (its ICCID's number) follows `histories[k % len(histories)]`,
    (state, instant) steps in time order such as `[("PROVISIONED", shipped), ("ACTIVE",
    activated)]`. Ids have `new_id`'s shape (`stc_` + 29 Crockford characters), derived from
    the Thing id and the step. PostgreSQL only."""
    assert database.is_postgres
    variants = []
    for variant, steps in enumerate(histories):
        for step, (state, when) in enumerate(steps):
            variants.append({"v": variant, "s": step, "state": state, "at": when})
    values = ", ".join(f"(:v{i}, :s{i}, :state{i}, CAST(:at{i} AS timestamptz))"
                       for i in range(len(variants)))
    params: dict[str, object] = {"account": tenant.account_id, "n": len(histories)}
    for i, row in enumerate(variants):
        params.update({f"v{i}": row["v"], f"s{i}": row["s"], f"state{i}": row["state"],
                       f"at{i}": row["at"]})
    with database.engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))  # valid by construction
        result = conn.execute(text(f"""
            INSERT INTO thing_state_changes (id, account_id, thing_id, from_state, to_state,
                                             changed_at, source)
            SELECT 'stc_' || upper(substr(md5(t.id || ':' || c.step), 1, 29)), t.account_id,
                   t.id, lag(c.state) OVER (PARTITION BY t.id ORDER BY c.step), c.state,
                   c.at, 'api'
            FROM things t
            JOIN (VALUES {values}) AS c(variant, step, state, at)
              ON c.variant = CAST(right(t.iccid, 15) AS bigint) % :n
            WHERE t.account_id = :account
        """), params)
        conn.execute(text("ANALYZE thing_state_changes"))
        return result.rowcount
