"""Address allocation under concurrency: many connections, one small pool, no duplicates.

Each worker thread has its own connection and transaction. SQLite serialises writers (BEGIN
IMMEDIATE), so there the same scenario checks correctness only; PostgreSQL runs them truly in
parallel, and one test shows a second allocator skipping the address the first is claiming
(an advisory lock per candidate address) instead of waiting for it.
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
from sqlalchemy import func, select

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
        return None if assigned is None else str(ipaddress.IPv4Address(assigned.address))


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
def test_a_second_allocator_skips_the_address_the_first_is_claiming(lab, backend):
    if backend.name != "postgresql":
        pytest.skip("SQLite serialises writers; concurrent claims exist only on PostgreSQL")
    net, pool = network_with_pool(lab.admin, 29)
    first, second = things_on(lab, net["id"], 2)
    holding = threading.Event()
    release = threading.Event()
    outcome: dict[str, Any] = {}

    def hold() -> None:
        with backend.database.transaction() as session:
            outcome["first"] = leases.allocate_dynamic(
                session, session.get(Thing, first["id"]), net["id"]).address
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(60)
        # The first transaction is still open, its lease invisible to others: the second
        # neither waits for it nor takes the same address.
        started = time.monotonic()
        with backend.database.transaction() as session:
            outcome["second"] = leases.allocate_dynamic(
                session, session.get(Thing, second["id"]), net["id"]).address
        assert time.monotonic() - started < 5, "the second allocator waited for the first"
        assert holder.is_alive(), "the first transaction ended before the second allocated"
    finally:
        release.set()
        holder.join(60)
    assert {outcome["first"], outcome["second"]} == {
        int(ipaddress.IPv4Address(host(pool["cidr"], 2))),
        int(ipaddress.IPv4Address(host(pool["cidr"], 3)))}
    assert sorted(_held(backend, net["id"])) == sorted(
        [host(pool["cidr"], 2), host(pool["cidr"], 3)])


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
