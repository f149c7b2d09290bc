"""Property tests of pool arithmetic and address allocation (issue 3, "Must show").

Carving is checked against a brute-force search over every aligned block; allocation runs the
real queries on a SQLite database of this module, inside a transaction that is rolled back
after each example.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from simplane.accounts.service import create_account
from simplane.core.config import load_settings
from simplane.core.db import Database
from simplane.core.ids import new_id
from simplane.core.migrate import upgrade
from simplane.models import IpLease, Network, Thing, ThingsGroup
from simplane.networks import ipam, leases, service
from simplane.networks.schemas import IpPoolCreate, NetworkCreate
from simplane.things.identifiers import random_iccid, random_imsi
from simplane.things.service import SimRow, ship_sims

SPACE = ipaddress.IPv4Network("10.0.0.0/20")


def _blocks(min_prefix: int, max_prefix: int) -> st.SearchStrategy[tuple[int, int]]:
    """An aligned block of SPACE, as (first, last)."""
    def block(prefix: int, index: int) -> tuple[int, int]:
        size = 1 << (32 - prefix)
        first = int(SPACE.network_address) + (index * size) % SPACE.num_addresses
        return first, first + size - 1
    return st.builds(block, st.integers(min_prefix, max_prefix), st.integers(0, 4095))


def _disjoint(blocks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    for candidate in blocks:
        if not any(ipam.overlaps(candidate, other) for other in kept):
            kept.append(candidate)
    return kept


def _brute_force(within: list[tuple[int, int]], taken: list[tuple[int, int]],
                 prefix: int) -> str | None:
    size = 1 << (32 - prefix)
    candidates = [(first, first + size - 1)
                  for low, high in within for first in range(low, high + 1)
                  if first % size == 0 and first + size - 1 <= high]
    free = [c for c in candidates if not any(ipam.overlaps(c, t) for t in taken)]
    if not free:
        return None
    return str(ipaddress.IPv4Network((min(free)[0], prefix)))


@settings(max_examples=300, deadline=None)
@given(within=st.lists(_blocks(20, 26), min_size=1, max_size=3).map(_disjoint),
       taken=st.lists(_blocks(20, 30), max_size=12), prefix=st.integers(20, 30))
def test_first_free_block_is_the_lowest_aligned_free_block(within, taken, prefix):
    found = ipam.first_free_block(within, taken, prefix)
    assert found == _brute_force(within, taken, prefix)
    if found is not None:
        block = ipaddress.IPv4Network(found)  # strict: raises if unaligned
        first, last = int(block.network_address), int(block.broadcast_address)
        assert block.prefixlen == prefix
        assert any(low <= first and last <= high for low, high in within)
        assert not any(ipam.overlaps((first, last), t) for t in taken)


# --- allocation on a real database --------------------------------------------------------

THINGS = 64  # more than the 61 usable addresses of a /26


@pytest.fixture(scope="module")
def ipam_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Any, list[str]]]:
    folder: Path = tmp_path_factory.mktemp("ipam")
    settings_ = load_settings(database_url=f"sqlite:///{folder / 'ipam.db'}",
                              data_dir=str(folder), secret_key="ipam-properties")
    database = Database(settings_.database_url)
    upgrade(database.engine)
    with database.transaction() as session:
        account = create_account(session, settings_, name="IPAM",
                                 admin_email="ipam@example.com").account
        network = service.create_network(session, settings_, account.id,
                                          NetworkCreate(name="props"))
        group = ThingsGroup(id=new_id("things_group"), account_id=account.id, name="props",
                            network_id=network.id,
                            ip_profile_id=session.scalar(
                                select(ThingsGroup.ip_profile_id).where(
                                    ThingsGroup.account_id == account.id)))
        session.add(group)
        ship_sims(session, account.id,
                  [SimRow(i, random_iccid(), random_imsi()) for i in range(THINGS)])
        session.execute(update(Thing).where(Thing.account_id == account.id)
                        .values(things_group_id=group.id))
        thing_ids = list(session.scalars(select(Thing.id).where(Thing.account_id == account.id)
                                         .order_by(Thing.id)))
        network_id = network.id
    yield database, network_id, thing_ids
    database.dispose()


def _addresses(session: Any, network_id: str) -> dict[str, int]:
    return dict(session.execute(select(IpLease.thing_id, IpLease.address)
                                .where(IpLease.network_id == network_id)).all())


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.integers(26, 29), data=st.data())
def test_allocation_hands_out_exactly_the_usable_addresses(ipam_db, prefix, data):
    database, network_id, thing_ids = ipam_db
    session = database.session()
    try:
        network = session.get(Network, network_id)
        pool = service.create_pool(session, network, IpPoolCreate(prefix_length=prefix))
        usable = list(range(pool.first_address + 2, pool.last_address))
        assert len(usable) == leases.usable_count(pool.first_address, pool.last_address)
        things = [session.get(Thing, thing_id) for thing_id in thing_ids]

        # Some Things lock addresses of their choice first, leaving holes anywhere.
        chosen = data.draw(st.lists(st.sampled_from(usable), unique=True,
                                    max_size=len(usable) // 2), label="locked")
        for thing, address in zip(things, chosen, strict=False):
            leases.lock_ip(session, thing, str(ipaddress.IPv4Address(address)))
        rest = things[len(chosen):]
        handed = []
        for thing in rest:
            assigned = leases.allocate_dynamic(session, thing, network_id)
            if assigned is None:
                break
            handed.append(assigned.address)
        # Dynamic addresses fill the holes lowest first; then the pool is exhausted.
        assert handed == sorted(set(usable) - set(chosen))
        assert len(handed) < len(rest)
        held = _addresses(session, network_id)
        assert sorted(held.values()) == usable
        assert {pool.first_address, pool.first_address + 1, pool.last_address}.isdisjoint(
            held.values())

        # Released leases come back, again lowest first, and nothing else moves.
        dynamic = [t for t in rest[:len(handed)]]
        released = data.draw(st.lists(st.sampled_from(dynamic), unique_by=lambda t: t.id,
                                      max_size=len(dynamic)), label="released")
        before = {t.id: held[t.id] for t in released}
        for thing in released:
            leases.release_dynamic(session, thing, network_id)
        session.flush()
        again = []
        for thing in reversed(released):
            again.append(leases.allocate_dynamic(session, thing, network_id).address)
        assert again == sorted(before.values())
        assert sorted(_addresses(session, network_id).values()) == usable
    finally:
        session.rollback()
        session.close()



def test_allocation_is_next_fit_and_reuses_released_addresses_after_the_top(ipam_db):
    database, network_id, thing_ids = ipam_db
    session = database.session()
    try:
        network = session.get(Network, network_id)
        pool = service.create_pool(session, network, IpPoolCreate(prefix_length=29))
        low, high = leases.usable_bounds(pool)  # a /29: five usable addresses
        things = [session.get(Thing, thing_id) for thing_id in thing_ids[:7]]
        first = [leases.allocate_dynamic(session, t, network_id).address
                 for t in things[:3]]
        assert first == [low, low + 1, low + 2]
        leases.release_dynamic(session, things[1], network_id)
        session.flush()
        # The released address waits until the rest of the pool has been handed out.
        rest = [leases.allocate_dynamic(session, t, network_id).address
                for t in things[3:6]]
        assert rest == [low + 3, high, low + 1]
        assert leases.allocate_dynamic(session, things[6], network_id) is None
        held = sorted(_addresses(session, network_id).values())
        assert held == list(range(low, high + 1))
    finally:
        session.rollback()
        session.close()
