"""Address allocation under concurrency: many connections, one small pool, no duplicates.

Each worker thread has its own connection and transaction. SQLite serialises writers (BEGIN
IMMEDIATE), so there the same scenario checks correctness only; PostgreSQL runs them truly in
parallel, and one test shows a second allocator waiting on the first one's lock.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from netkit import host, lock, network_with_pool, things_on
from sqlalchemy import func, select, text

from simplane.models import IpLease, Thing
from simplane.networks import leases

WORKERS = 8  # against a /29: 5 usable addresses


def _run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` in `count` threads released at once; every result, or the first error."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    if errors:
        raise errors[0]
    return results


def _allocate(backend: Any, thing_id: str, network_id: str) -> str | None:
    with backend.database.transaction() as session:
        thing = session.get(Thing, thing_id)
        assigned = leases.allocate_dynamic(session, thing, network_id)
        return None if assigned is None else str(ipaddress.IPv4Address(assigned.lease.address))


def _held(backend: Any, network_id: str) -> list[str]:
    with backend.database.transaction(read_only=True) as session:
        return [str(ipaddress.IPv4Address(a)) for a in session.scalars(
            select(IpLease.address).where(IpLease.network_id == network_id))]


def test_concurrent_dynamic_allocation_never_duplicates(lab):
    net, pool = network_with_pool(lab.admin, 29)
    things = things_on(lab, net["id"], WORKERS)
    got = _run_together(WORKERS, lambda i: _allocate(lab.backend, things[i]["id"], net["id"]))
    handed = [a for a in got if a is not None]
    assert sorted(handed) == sorted(host(pool["cidr"], i) for i in range(2, 7))
    assert got.count(None) == WORKERS - 5
    assert sorted(_held(lab.backend, net["id"])) == sorted(handed)
    usage = lab.admin.get(f"/v1/networks/{net['id']}/ip-pools/{pool['id']}").json()
    assert (usage["leased"], usage["free"]) == (5, 0)


def test_concurrent_lock_requests_over_http_never_duplicate(lab):
    net, pool = network_with_pool(lab.admin, 29)
    things = things_on(lab, net["id"], WORKERS)
    token = lab.admin.headers["authorization"]

    def request(index: int) -> httpx.Response:
        # One client per thread: its own connection to the server, its own transaction there.
        with httpx.Client(base_url=lab.base_url, headers={"Authorization": token},
                          timeout=60) as client:
            return lock(client, things[index]["id"])

    responses = _run_together(WORKERS, request)
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(ok) == 5, [r.text for r in responses]
    assert sorted(r.json()["ip_address"] for r in ok) == sorted(
        host(pool["cidr"], i) for i in range(2, 7))
    for response in refused:
        assert response.status_code == 412 and response.json()["code"] == "pool_exhausted", (
            response.text)
    assert len(_held(lab.backend, net["id"])) == 5


def test_concurrent_requests_for_one_address_give_it_to_one_thing(lab):
    net, pool = network_with_pool(lab.admin, 29)
    things = things_on(lab, net["id"], 4)
    token = lab.admin.headers["authorization"]
    wanted = host(pool["cidr"], 4)

    def request(index: int) -> httpx.Response:
        with httpx.Client(base_url=lab.base_url, headers={"Authorization": token},
                          timeout=60) as client:
            return lock(client, things[index]["id"], wanted)

    responses = _run_together(4, request)
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412], [
        r.text for r in responses]
    assert _held(lab.backend, net["id"]) == [wanted]


@pytest.mark.postgres_only
def test_a_second_allocator_waits_for_the_first_to_commit(lab, backend):
    if backend.name != "postgresql":
        pytest.skip("SQLite serialises writers; the lock wait exists only on PostgreSQL")
    net, pool = network_with_pool(lab.admin, 29)
    first, second = things_on(lab, net["id"], 2)
    holding = threading.Event()
    release = threading.Event()
    outcome: dict[str, Any] = {}

    def hold() -> None:
        with backend.database.transaction() as session:
            outcome["first"] = leases.allocate_dynamic(
                session, session.get(Thing, first["id"]), net["id"]).lease.address
            holding.set()
            release.wait(60)

    def follow() -> None:
        with backend.database.transaction() as session:
            outcome["pid"] = session.scalar(text("SELECT pg_backend_pid()"))
            assigned = leases.allocate_dynamic(session, session.get(Thing, second["id"]),
                                               net["id"])
            outcome["second"] = assigned.lease.address

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(60)
    follower = threading.Thread(target=follow)
    follower.start()
    try:
        # The follower blocks on the Network's row lock while the first transaction is open.
        deadline = time.monotonic() + 30
        with backend.database.transaction(read_only=True) as watch:
            while True:
                waiting = watch.scalar(text(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": outcome.get("pid", -1)})
                if waiting == "Lock":
                    break
                assert time.monotonic() < deadline, "the second allocator never waited"
                assert "second" not in outcome, "allocated while the first was uncommitted"
                time.sleep(0.01)
                watch.rollback()
    finally:
        release.set()
        holder.join(60)
        follower.join(60)
    assert {outcome["first"], outcome["second"]} == {
        int(ipaddress.IPv4Address(host(pool["cidr"], 2))),
        int(ipaddress.IPv4Address(host(pool["cidr"], 3)))}


@pytest.mark.postgres_only
def test_many_rounds_of_parallel_allocation_on_postgresql(lab, backend):
    if backend.name != "postgresql":
        pytest.skip("SQLite serialises writers; parallel allocation exists only on PostgreSQL")
    net, pool = network_with_pool(lab.admin, 27)  # 29 usable
    things = things_on(lab, net["id"], 32)
    got = _run_together(16, lambda i: [_allocate(lab.backend, things[j]["id"], net["id"])
                                       for j in range(i * 2, i * 2 + 2)])
    handed = [a for pair in got for a in pair if a is not None]
    assert len(handed) == len(set(handed)) == 29
    with backend.database.transaction(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(IpLease).where(
            IpLease.network_id == net["id"])) == 29
