"""Handing out addresses: atomic, per Network, without materialising a pool row by row.

Only addresses in use have a row (`ip_leases`). Finding a free one is an anti-join over the
leases of the Network in address order that stops at the first gap, so a /16 costs as little
as a /29. Allocation holds the Network's row lock (`SELECT ... FOR UPDATE` on PostgreSQL; on
SQLite the write transaction already holds the database's write lock) and the unique
constraint (network_id, address) backs it up: two processes never hand out one address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from ..core.db import is_postgres
from ..core.errors import bad_field, precondition
from ..core.ids import new_id
from ..events import service as events
from ..models import IpLease, IpPool, Network, Thing, utcnow

LOCKED = "LOCKED"
DYNAMIC = "DYNAMIC"


def usable_bounds(pool: IpPool) -> tuple[int, int]:
    """The network address, the gateway (first host) and the broadcast are never assigned."""
    return pool.first_address + 2, pool.last_address - 1


def usable_count(first: int, last: int) -> int:
    return max(0, last - first + 1 - 3)


def lock_network(session: Session, account_id: str, network_id: str) -> Network | None:
    return session.scalar(select(Network).where(Network.account_id == account_id,
                                                Network.id == network_id).with_for_update())


def purge_expired(session: Session, network_id: str, now: datetime | None = None) -> None:
    """Expired dynamic leases free their address; the Thing no longer shows it."""
    now = now or utcnow()
    expired = select(IpLease.thing_id).where(IpLease.network_id == network_id,
                                             IpLease.kind == DYNAMIC, IpLease.expires_at < now)
    session.execute(update(Thing).where(Thing.id.in_(expired)).values(ip_address=None)
                    .execution_options(synchronize_session=False))
    session.execute(delete(IpLease).where(IpLease.network_id == network_id,
                                          IpLease.kind == DYNAMIC, IpLease.expires_at < now))


def _lock_and_purge(session: Session, account_id: str, network_id: str, now: datetime) -> None:
    """`lock_network`, then `purge_expired`. On PostgreSQL one statement does both: it runs
    for every allocation, and every round trip made under the lock is one that every other
    allocator of the Network waits for. (What the purge's snapshot, taken before the lock,
    cannot see was committed by an earlier holder of the lock: new leases, not expired ones.)"""
    if not is_postgres(session):
        lock_network(session, account_id, network_id)
        purge_expired(session, network_id, now)
        return
    locked = select(Network.id).where(Network.account_id == account_id,
                                      Network.id == network_id).with_for_update().cte("locked")
    freed = delete(IpLease).where(
        IpLease.network_id == select(locked.c.id).scalar_subquery(), IpLease.kind == DYNAMIC,
        IpLease.expires_at < now).returning(IpLease.thing_id).cte("freed")
    session.execute(update(Thing).where(Thing.id.in_(select(freed.c.thing_id)))
                    .values(ip_address=None, updated_at=utcnow())
                    .execution_options(synchronize_session=False))


def pools_of(session: Session, account_id: str, network_id: str) -> list[IpPool]:
    return list(session.scalars(select(IpPool).where(
        IpPool.account_id == account_id, IpPool.network_id == network_id)
        .order_by(IpPool.first_address)))


# Built once: a fresh alias per call defeats SQLAlchemy's statement cache (the allocation
# path of every attach).
_NEXT_LEASE = aliased(IpLease, name="next_lease")


def first_free_address(session: Session, network_id: str, pool: IpPool) -> int | None:
    low, high = usable_bounds(pool)
    if low > high:
        return None
    taken = select(IpLease.id).where(IpLease.network_id == network_id, IpLease.address == low)
    if session.scalar(taken) is None:
        return low
    after = _NEXT_LEASE
    gap = session.scalar(
        select(IpLease.address + 1)
        .where(IpLease.network_id == network_id, IpLease.address >= low,
               IpLease.address < high,
               ~exists().where(and_(after.network_id == network_id,
                                    after.address == IpLease.address + 1)))
        .order_by(IpLease.address).limit(1))
    return int(gap) if gap is not None else None


def _free_address(session: Session, network_id: str,
                  pools: Sequence[IpPool]) -> tuple[IpPool, int] | None:
    for pool in pools:
        address = first_free_address(session, network_id, pool)
        if address is not None:
            return pool, address
    return None


def current_lease(session: Session, network_id: str, thing_id: str) -> IpLease | None:
    return session.scalar(select(IpLease).where(IpLease.network_id == network_id,
                                                IpLease.thing_id == thing_id))


def pool_containing(pools: Sequence[IpPool], address: int) -> IpPool | None:
    return next((p for p in pools if p.first_address <= address <= p.last_address), None)


def network_of_thing(session: Session, thing: Thing) -> str:
    from ..models import ThingsGroup

    return session.scalar(select(ThingsGroup.network_id).where(  # type: ignore[return-value]
        ThingsGroup.account_id == thing.account_id, ThingsGroup.id == thing.things_group_id))


@dataclass
class Assignment:
    lease: IpLease
    pool: IpPool
    created: bool


def allocate_dynamic(session: Session, thing: Thing, network_id: str) -> Assignment | None:
    """The Thing's locked or unexpired address on this Network, else a free one; None when
    every pool is full (the caller raises `pool_exhausted`)."""
    return allocate_dynamic_many(session, [thing], network_id)[0]


def allocate_dynamic_many(session: Session, things: Sequence[Thing],
                          network_id: str) -> list[Assignment | None]:
    """`allocate_dynamic` for several Things of the Network's account (locked by the caller),
    with the same answers as calls one after the other: the Network is locked, purged and read
    once, and free addresses are taken a run at a time, lowest first. The RADIUS server decides the
    Access-Requests that arrive together in one transaction, so one lock and one commit serve
    them all instead of serialising every attach on the lock."""
    if not things:
        return []
    account_id = things[0].account_id
    # Read before the lock, which is held until the commit and so should cover as few round
    # trips as can be: pools change under the account's IPAM lock, not this one; a Thing's
    # leases change only under the Thing's row lock (the caller holds it) or when a purge
    # deletes an expired one, which is replayed below.
    pools = pools_of(session, account_id, network_id)
    held = {lease.thing_id: lease for lease in session.scalars(select(IpLease).where(
        IpLease.network_id == network_id, IpLease.thing_id.in_({t.id for t in things})))}
    now = utcnow()
    _lock_and_purge(session, account_id, network_id, now)
    for thing in things:
        lease = held.get(thing.id)
        if lease is not None and lease.kind == DYNAMIC and lease.expires_at is not None \
                and lease.expires_at < now:
            del held[thing.id]
            # The purge cleared the address in the database only: without this, handing the
            # Thing the same address again would look like no change and never be written.
            set_committed_value(thing, "ip_address", None)
    free: list[tuple[IpPool, int]] = []
    exhausted = False
    results: list[Assignment | None] = []
    for index, thing in enumerate(things):
        lease = held.get(thing.id)
        if lease is not None:
            if lease.kind == DYNAMIC:
                lease.expires_at = None  # a session holds it now; Stop restarts the clock
            pool = pool_containing(pools, lease.address)
            assert pool is not None
            results.append(Assignment(lease, pool, False))
            continue
        if not free and not exhausted:
            session.flush()  # the leases handed out so far are taken
            wanted = len({t.id for t in things[index:]} - held.keys())
            free = _free_run(session, network_id, pools, wanted)
            exhausted = not free
        if not free:
            results.append(None)
            continue
        pool, address = free.pop(0)
        lease = IpLease(id=new_id("lease"), account_id=thing.account_id, network_id=network_id,
                        pool_id=pool.id, thing_id=thing.id, address=address, kind=DYNAMIC,
                        expires_at=None, created_at=now, updated_at=now)
        session.add(lease)
        held[thing.id] = lease
        thing.ip_address = str(ipaddress.IPv4Address(address))
        results.append(Assignment(lease, pool, True))
    session.flush()
    return results


def _free_run(session: Session, network_id: str, pools: Sequence[IpPool],
              wanted: int) -> list[tuple[IpPool, int]]:
    """Up to `wanted` free addresses in order: the first free one and those right after it up
    to the next address in use (one indexed look-up), so a batch costs one search, not one
    per address."""
    found = _free_address(session, network_id, pools)
    if found is None:
        return []
    pool, address = found
    if wanted <= 1:
        return [found]
    _, high = usable_bounds(pool)
    taken = session.scalar(select(func.min(IpLease.address)).where(
        IpLease.network_id == network_id, IpLease.address > address, IpLease.address <= high))
    last = min(high if taken is None else int(taken) - 1, address + wanted - 1)
    return [(pool, a) for a in range(address, last + 1)]


def lock_ip(session: Session, thing: Thing, requested: str | None) -> str:
    """Lock the Thing's current address, a requested one, or a free one of its Network."""
    network_id = network_of_thing(session, thing)
    lock_network(session, thing.account_id, network_id)
    now = utcnow()
    purge_expired(session, network_id, now)
    pools = pools_of(session, thing.account_id, network_id)
    lease = current_lease(session, network_id, thing.id)
    if requested is not None:
        try:
            address = int(ipaddress.IPv4Address(requested))
        except ValueError:
            raise bad_field("ip_lock.ip_address", f"{requested!r} is not an IPv4 address") from None
        pool = pool_containing(pools, address)
        if pool is None:
            raise bad_field("ip_lock.ip_address",
                            f"{requested} is in none of the Network's IP pools")
        low, high = usable_bounds(pool)
        if not low <= address <= high:
            raise bad_field("ip_lock.ip_address", f"{requested} is the network, gateway or "
                            f"broadcast address of pool {pool.cidr}")
        holder = session.scalar(select(IpLease).where(IpLease.network_id == network_id,
                                                      IpLease.address == address))
        if holder is not None and holder.thing_id != thing.id:
            raise precondition("ip_in_use", f"{requested} is held by another Thing")
        if lease is not None and lease.address != address:
            if lease.kind == LOCKED:
                raise precondition("ip_locked", f"Thing {thing.id} already holds locked IP "
                                   f"{thing.ip_address}; unlock it first")
            session.delete(lease)
            session.flush()
            lease = None
        if lease is None:
            lease = IpLease(id=new_id("lease"), account_id=thing.account_id,
                            network_id=network_id, pool_id=pool.id, thing_id=thing.id,
                            address=address, kind=LOCKED, created_at=now, updated_at=now)
            session.add(lease)
    elif lease is None:
        found = _free_address(session, network_id, pools)
        if found is None:
            raise precondition("pool_exhausted", f"no address is free in Network {network_id}")
        pool, address = found
        lease = IpLease(id=new_id("lease"), account_id=thing.account_id, network_id=network_id,
                        pool_id=pool.id, thing_id=thing.id, address=address, kind=LOCKED,
                        created_at=now, updated_at=now)
        session.add(lease)
    lease.kind = LOCKED
    lease.expires_at = None
    lease.updated_at = now
    address_text = str(ipaddress.IPv4Address(lease.address))
    thing.ip_address = address_text
    thing.ip_locked = True
    session.flush()
    events.emit(session, thing.account_id, "thing.ip_locked", thing_id=thing.id,
                data={"ip_address": address_text, "network_id": network_id})
    return address_text


def unlock_ip(session: Session, thing: Thing, *, reason: str = "unlocked",
              release: bool = False, occurred_at: datetime | None = None) -> None:
    """The address becomes an ordinary dynamic lease (kept across reconnects until it expires),
    or is released at once (`release`, e.g. when the Thing retires)."""
    from .nat import delete_rules_of_thing, rules_of_thing

    if not thing.ip_locked:
        return
    if not release:
        forwarded = rules_of_thing(session, thing)
        if forwarded:
            raise precondition("in_use", f"NAT rules {', '.join(forwarded)} forward to "
                               f"{thing.ip_address}; delete them before unlocking")
    network_id = network_of_thing(session, thing)
    lease = current_lease(session, network_id, thing.id)
    address = thing.ip_address
    nat_rules = delete_rules_of_thing(session, thing) if release else []
    if lease is not None:
        if release:
            session.delete(lease)
        else:
            pool = session.get(IpPool, lease.pool_id)
            lease.kind = DYNAMIC
            expiry = thing.connection_status != "ATTACHED"
            lease.expires_at = utcnow() + timedelta(seconds=pool.lease_seconds) if (
                expiry and pool) else None
    thing.ip_locked = False
    if release:
        thing.ip_address = None
    session.flush()
    data: dict[str, object] = {"ip_address": address, "reason": reason}
    if nat_rules:
        data["nat_rules_deleted"] = nat_rules
    events.emit(session, thing.account_id, "thing.ip_unlocked", thing_id=thing.id, data=data,
                occurred_at=occurred_at)


def release_dynamic(session: Session, thing: Thing, network_id: str) -> None:
    """Drop a dynamic lease (moving to another Network); the Thing no longer shows the address."""
    session.execute(delete(IpLease).where(IpLease.network_id == network_id,
                                          IpLease.thing_id == thing.id, IpLease.kind == DYNAMIC))
    thing.ip_address = None


def pool_usage(session: Session, pool_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(leased, locked) per pool; an expired dynamic lease counts as free."""
    usage = {pool_id: (0, 0) for pool_id in pool_ids}
    if not pool_ids:
        return usage
    now = utcnow()
    rows = session.execute(
        select(IpLease.pool_id, IpLease.kind, func.count())
        .where(IpLease.pool_id.in_(pool_ids),
               (IpLease.kind == LOCKED) | IpLease.expires_at.is_(None) | (IpLease.expires_at >= now))
        .group_by(IpLease.pool_id, IpLease.kind))
    for pool_id, kind, count in rows:
        leased, locked = usage[pool_id]
        usage[pool_id] = (leased + count, locked) if kind == DYNAMIC else (leased, locked + count)
    return usage


def leases_outside(session: Session, pool: IpPool, low: int, high: int) -> int:
    now = utcnow()
    return int(session.scalar(select(func.count()).where(
        IpLease.pool_id == pool.id, (IpLease.address < low) | (IpLease.address > high),
        (IpLease.kind == LOCKED) | IpLease.expires_at.is_(None) | (IpLease.expires_at >= now)))
        or 0)
