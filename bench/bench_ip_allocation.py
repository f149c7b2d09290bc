"""IP allocation: every usable address of a /16 handed out, one lease per transaction, by
the allocator the RADIUS Access-Request path calls (`networks.leases.allocate_dynamic`), from
several processes at once; no address may be handed out twice.

Baseline, same run, same database, same processes: plain INSERTs of the same lease rows (the
addresses known in advance), one per transaction; half of them before the allocations and half
after, each half into an empty table.

Both sides run 2, 4 and 8 transactions at a time (`CONCURRENCY`), each in a process of its
own, the way the server runs them: `radius.server` decides requests on one thread per process,
because a second thread in the same interpreter only contends for it, and `serve --workers`
adds processes. (Until the seventh round 8 ran as threads of one process.) Each process
keeps its own allocation cursor, so the processes also race each other for the same
addresses, which the advisory locks and unique constraints must settle across processes.
"""

from __future__ import annotations

import ipaddress
import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from queue import Empty

from sqlalchemy import func, insert, select, text

from bench._data import bench_settings, create_tenant, insert_things
from bench._harness import Context, Measurement, autovacuum_stand_in
from simplane.core.db import Database
from simplane.core.ids import new_id
from simplane.models import IpLease, IpPool, Thing
from simplane.networks import leases
from simplane.things import repository as things_repository

# Transactions at a time, each in a process of its own: 2 as the server runs them on this
# machine (`serve --workers 2`, one deciding thread each), up to the 8 threads of earlier
# rounds. Each side's figure is its best.
CONCURRENCY = (2, 4, 8)
# A process that neither reports nor is alive any more has died (the run has failed).
_RESULT_POLL_SECONDS = 5.0


def _run_processes(url: str, processes: int, work: Sequence[str],
                   step: Callable[[Database, str], object],
                   meanwhile: Callable[[], AbstractContextManager[object]] = nullcontext,
                   ) -> tuple[float, list]:
    """Each process takes the next item until none is left, through `step` on a connection
    of its own; the elapsed time (from all processes ready to the last one done) and the
    results in the order of `work`. `meanwhile` is entered in this process once they are
    ready, for as long as they run.

    The processes are forked before `meanwhile` starts any thread: they inherit `work` and
    `step` without pickling, and open their own connections (the parent's pooled ones are
    never touched in a child)."""
    context = multiprocessing.get_context("fork")
    position = context.Value("q", 0)
    ready = context.Barrier(processes + 1)
    go = context.Event()
    outcomes = context.Queue()

    def worker() -> None:
        database = Database(url, pool_size=1, max_overflow=0)
        try:
            with database.engine.connect():
                pass  # connected before the clock starts
            ready.wait()
            go.wait()
            done: list[tuple[int, object]] = []
            while True:
                with position.get_lock():
                    index = position.value
                    position.value += 1
                if index >= len(work):
                    break
                done.append((index, step(database, work[index])))
            outcomes.put((time.perf_counter(), done, None))
        except BaseException:  # the parent raises it: the run has failed
            outcomes.put((time.perf_counter(), [], traceback.format_exc()))
            ready.abort()
        finally:
            database.dispose()

    started_processes = [context.Process(target=worker, daemon=True) for _ in range(processes)]
    for process in started_processes:
        process.start()
    try:
        try:
            ready.wait()
        except threading.BrokenBarrierError:  # a process failed before it was ready
            raise RuntimeError(f"a benchmark process failed:\n"
                               f"{_next_outcome(started_processes, outcomes)[2]}") from None
        with meanwhile():
            go.set()
            # perf_counter is CLOCK_MONOTONIC, one clock for every process of the machine.
            started = time.perf_counter()
            results, finished = _collect(started_processes, outcomes, len(work), started)
    finally:
        go.set()
        for process in started_processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return finished - started, results


def _collect(processes: Sequence[multiprocessing.process.BaseProcess], outcomes,  # type: ignore[no-untyped-def]
             count: int, started: float) -> tuple[list, float]:
    """The results of every process, in the order of the work, and when the last finished."""
    results: list = [None] * count
    finished = started
    for _ in processes:
        finished_at, done, error = _next_outcome(processes, outcomes)
        if error is not None:
            raise RuntimeError(f"a benchmark process failed:\n{error}")
        finished = max(finished, finished_at)
        for index, result in done:
            results[index] = result
    return results, finished


def _next_outcome(processes: Sequence[multiprocessing.process.BaseProcess], outcomes):  # type: ignore[no-untyped-def]
    while True:
        try:
            return outcomes.get(timeout=_RESULT_POLL_SECONDS)
        except Empty:
            # Each process reports before it exits: one that ended otherwise was killed.
            if any(p.exitcode not in (None, 0) for p in processes):
                raise RuntimeError("a benchmark process died without a result") from None


def run(ctx: Context) -> list[Measurement]:
    with ctx.postgres("ip_allocation") as url:
        database = Database(url, pool_size=2)
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

    def plain_insert(own: Database, index: str) -> None:
        with own.engine.begin() as conn:
            conn.execute(statement, rows[int(index)])

    def allocate(own: Database, thing_id: str) -> int | None:
        with own.transaction() as session:
            # The Thing loaded as the API's routes load one (its account's, by id).
            thing = things_repository.get_thing(session, tenant.account_id, thing_id)
            assert thing is not None
            assigned = leases.allocate_dynamic(session, thing, tenant.network_id)
            return None if assigned is None else assigned.address

    half = count // 2
    runs = []
    for processes in CONCURRENCY:
        # Half the baseline before the allocations and half after, each into an empty table:
        # the host's speed drifts within a run, and a baseline measured only before would
        # compare the allocations with another minute's machine.
        first_half, _ = _run_processes(url, processes, [str(i) for i in range(half)],
                                       plain_insert)
        _empty(database, tenant.account_id)
        # Each allocation updates its Thing (the address it shows); the plain inserts update
        # nothing, so they need no vacuuming.
        seconds, addresses = _run_processes(
            url, processes, thing_ids, allocate,
            lambda: autovacuum_stand_in(url, ("things", "ip_leases")))
        checked = _check(database, tenant.account_id, tenant.network_id, addresses, count,
                         usable, low, high)
        _empty(database, tenant.account_id)
        second_half, _ = _run_processes(url, processes, [str(i) for i in range(half, count)],
                                        plain_insert)
        _empty(database, tenant.account_id)
        runs.append({"processes": processes, "leases_per_second": checked["leases"] / seconds,
                     "baseline_per_second": count / (first_half + second_half),
                     "seconds": seconds, "baseline_halves_seconds": [first_half, second_half],
                     **checked})
    # Each side at the concurrency it does best with.
    best = max(runs, key=lambda run: run["leases_per_second"])
    best_baseline = max(runs, key=lambda run: run["baseline_per_second"])
    expected = count if count < usable else usable
    return [Measurement(
        benchmark=f"IP allocation {expected:,} leases of a /16", engine="postgresql",
        figure=best["leases_per_second"], unit="leases/s",
        baseline=best_baseline["baseline_per_second"],
        baseline_name="plain INSERTs of the same rows", target_ratio=0.3,
        details={"pool": str(ipaddress.IPv4Network((low - 2, 16))), "usable": usable,
                 "processes": best["processes"],
                 "baseline_processes": best_baseline["processes"], "threads_per_process": 1,
                 "runs": runs})]


def _empty(database: Database, account_id: str) -> None:
    """No lease, no Thing showing an address, and the dead rows vacuumed: the next run
    starts where the first did."""
    with database.engine.begin() as conn:
        conn.execute(text("TRUNCATE ip_leases"))
        conn.execute(text("UPDATE things SET ip_address = NULL "
                          "WHERE account_id = :account AND ip_address IS NOT NULL"),
                     {"account": account_id})
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE things, ip_leases"))


def _check(database: Database, account_id: str, network_id: str, addresses: list,
           count: int, usable: int, low: int, high: int) -> dict:
    """Every Thing got its own address (the last 3 none, at full size): else AssertionError."""
    handed = [a for a in addresses if a is not None]
    with database.transaction(read_only=True) as session:
        stored = session.scalar(select(func.count(func.distinct(IpLease.address))).where(
            IpLease.network_id == network_id))
        shown = session.scalar(select(func.count(func.distinct(Thing.ip_address))).where(
            Thing.account_id == account_id, Thing.ip_address.is_not(None)))
    # At full size the pool runs out exactly at the 3 extra Things; smaller runs leave room.
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
    return {"leases": len(handed), "distinct_addresses": stored, "duplicates": duplicates,
            "exhausted_answers": exhausted}
