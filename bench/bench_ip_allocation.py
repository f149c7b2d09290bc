"""IP allocation: every usable address of a /16 handed out, one lease per transaction, by
the allocator the RADIUS Access-Request path calls (`networks.leases.allocate_dynamic`), from
several threads at once; no address may be handed out twice.

Baseline, same run, same database, same threads: plain INSERTs of the same lease rows (the
addresses known in advance), one per transaction; half of them before the allocations and half
after, each half into an empty table.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, text

from bench._data import bench_settings, create_tenant, insert_things
from bench._harness import Context, Measurement, autovacuum_stand_in
from simplane.core.db import Database
from simplane.core.ids import new_id
from simplane.models import IpLease, IpPool, Thing
from simplane.networks import leases
from simplane.things import repository as things_repository

THREADS = 8


def _run_threads(work: Sequence[str], step: Callable[[str], object]) -> tuple[float, list]:
    """Each thread takes the next item until none is left; the elapsed time and the results."""
    lock = threading.Lock()
    position = 0
    results: list = [None] * len(work)
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal position
        while not errors:
            with lock:
                index = position
                position += 1
            if index >= len(work):
                return
            try:
                results[index] = step(work[index])
            except BaseException as exc:  # stop everyone; the run has failed
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started, results


def run(ctx: Context) -> list[Measurement]:
    with ctx.postgres("ip_allocation") as url:
        database = Database(url, pool_size=THREADS + 2)
        try:
            return _measure(ctx, database, url)
        finally:
            database.dispose()


def _measure(ctx: Context, database: Database, url: str) -> list[Measurement]:
    settings = bench_settings(url)
    tenant = create_tenant(database, settings)
    with database.transaction() as session:
        pool = session.scalar(select(IpPool).where(IpPool.network_id == tenant.network_id))
        assert pool is not None and pool.cidr.endswith("/16"), pool
        low, high = leases.usable_bounds(pool)
        pool_id = pool.id
    usable = high - low + 1
    count = min(usable, ctx.size(usable, minimum=1000))
    thing_ids = insert_things(database, tenant, count + 3, state="ACTIVE")

    # Baseline: the same rows, addresses precomputed, one INSERT per transaction.
    now = datetime.now(UTC)
    rows = [{"id": new_id("lease"), "account_id": tenant.account_id,
             "network_id": tenant.network_id, "pool_id": pool_id, "thing_id": thing_id,
             "address": low + i, "kind": leases.DYNAMIC, "created_at": now, "updated_at": now}
            for i, thing_id in enumerate(thing_ids[:count])]
    statement = insert(IpLease.__table__)

    def plain_insert(index: str) -> None:
        with database.engine.begin() as conn:
            conn.execute(statement, rows[int(index)])

    # Half the baseline before the allocations and half after, each into an empty table: the
    # host's speed drifts within a run, and a baseline measured only before would compare
    # the allocations with another minute's machine.
    half = count // 2
    first_half_seconds, _ = _run_threads([str(i) for i in range(half)], plain_insert)
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM ip_leases"))
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE ip_leases"))

    def allocate(thing_id: str) -> int | None:
        with database.transaction() as session:
            # The Thing loaded as the API's routes load one (its account's, by id).
            thing = things_repository.get_thing(session, tenant.account_id, thing_id)
            assert thing is not None
            assigned = leases.allocate_dynamic(session, thing, tenant.network_id)
            return None if assigned is None else assigned.address

    # Each allocation updates its Thing (the address it shows); the plain inserts update
    # nothing, so they need no vacuuming.
    with autovacuum_stand_in(url, ("things", "ip_leases")):
        seconds, addresses = _run_threads(thing_ids, allocate)
    handed = [a for a in addresses if a is not None]
    with database.transaction(read_only=True) as session:
        stored = session.scalar(select(func.count(func.distinct(IpLease.address))).where(
            IpLease.network_id == tenant.network_id))
        shown = session.scalar(select(func.count(func.distinct(Thing.ip_address))).where(
            Thing.account_id == tenant.account_id, Thing.ip_address.is_not(None)))
    # At full size the pool runs out exactly at the 3 extra Things; smaller runs leave room.
    expected = count if count < usable else usable
    exhausted = len(addresses) - len(handed)
    if count == usable and exhausted != 3 or count < usable and len(handed) != count + 3:
        raise AssertionError(f"{len(handed)} leases for {len(addresses)} Things in a pool of "
                             f"{usable}: expected the pool to fill exactly")
    duplicates = len(handed) - len(set(handed))
    if duplicates or stored != len(handed) or shown != len(handed):
        raise AssertionError(f"{duplicates} duplicate address(es); {stored} distinct leases and "
                             f"{shown} distinct Thing addresses for {len(handed)} allocations")
    outside = [a for a in handed if not low <= a <= high]
    if outside:
        raise AssertionError(f"addresses outside the usable range: {outside[:5]}")
    with database.engine.begin() as conn:
        conn.execute(text("TRUNCATE ip_leases"))
    second_half_seconds, _ = _run_threads([str(i) for i in range(half, count)], plain_insert)
    baseline_seconds = first_half_seconds + second_half_seconds
    rate = len(handed) / seconds
    return [Measurement(
        benchmark=f"IP allocation {expected:,} leases of a /16", engine="postgresql",
        figure=rate, unit="leases/s", baseline=count / baseline_seconds,
        baseline_name="plain INSERTs of the same rows", target_ratio=0.3,
        details={"leases": len(handed), "distinct_addresses": stored, "duplicates": duplicates,
                 "pool": str(ipaddress.IPv4Network((low - 2, 16))), "usable": usable,
                 "exhausted_answers": exhausted, "threads": THREADS,
                 "seconds": seconds, "baseline_seconds": baseline_seconds,
                 "baseline_halves_seconds": [first_half_seconds, second_half_seconds]})]
