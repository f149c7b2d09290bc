"""Handing out addresses: atomic, per Network, without materialising a pool row by row.

Only addresses in use have a row (`ip_leases`). A free address is found next-fit: each process
keeps a cursor per Network just past the address it handed out last and takes the lowest free
address at or above it, wrapping to the bottom of the pool when the top is full. Filling a /16
therefore costs one index probe per lease, and a released address is reused only after the
rest of the pool has been handed out (a device that reconnects late is less likely to find its
old address on another device). Finding a gap after a jump is an anti-join over the leases in
address order that stops at the first gap.

Concurrent allocations do not queue on one lock. On PostgreSQL each candidate address is
claimed with a transaction-scoped advisory lock (`pg_try_advisory_xact_lock`): allocators
running at the same time skip each other's candidates, much like `SKIP LOCKED` over a
materialised pool. The unique constraints (network_id, address) and (network_id, thing_id)
settle what the locks cannot see (a lease committed after the search began): the insert does
nothing and the allocation looks again. SQLite has one writer at a time, so the search alone
suffices there.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, select, text, update
from sqlalchemy.orm import Session, aliased, make_transient_to_detached
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
    # Runs on every allocation: one indexed DELETE that usually finds nothing.
    holders = session.scalars(delete(IpLease).where(
        IpLease.network_id == network_id, IpLease.expires_at < now, IpLease.kind == DYNAMIC,
    ).returning(IpLease.thing_id).execution_options(synchronize_session=False)).all()
    if holders:
        session.execute(update(Thing).where(Thing.id.in_(holders)).values(ip_address=None)
                        .execution_options(synchronize_session=False))


def pools_of(session: Session, account_id: str, network_id: str) -> list[IpPool]:
    return list(session.scalars(select(IpPool).where(
        IpPool.account_id == account_id, IpPool.network_id == network_id)
        .order_by(IpPool.first_address)))


# Built once: a fresh alias per call defeats SQLAlchemy's statement cache (the allocation
# path of every attach).
_NEXT_LEASE = aliased(IpLease, name="next_lease")


def _lowest_free_from(session: Session, network_id: str, start: int, high: int) -> int | None:
    probe = select(IpLease.id).where(IpLease.network_id == network_id, IpLease.address == start)
    if session.scalar(probe) is None:
        return start
    after = _NEXT_LEASE
    gap = session.scalar(
        select(IpLease.address + 1)
        .where(IpLease.network_id == network_id, IpLease.address >= start,
               IpLease.address < high,
               ~exists().where(and_(after.network_id == network_id,
                                    after.address == IpLease.address + 1)))
        .order_by(IpLease.address).limit(1))
    return int(gap) if gap is not None else None


# Where this process's next search starts, per Network: the pool and the address just past
# its last hand-out. The threads of a process share it: concurrent allocations claim
# neighbouring addresses.
_cursors: dict[str, tuple[str, int]] = {}
_hint_lock = threading.Lock()


def _cursor_in(network_id: str, pool: IpPool) -> int | None:
    cursor = _cursors.get(network_id)
    return cursor[1] if cursor is not None and cursor[0] == pool.id else None


def _advance(network_id: str, pool_id: str, address: int) -> None:
    """Move the cursor past `address`, never back within a pool: threads finishing out of
    order would otherwise send the next search over addresses already handed out. (The
    general path's wrap to the bottom of a full pool sets it directly.)"""
    cursor = _cursors.get(network_id)
    if cursor is None or cursor[0] != pool_id or address + 1 > cursor[1]:
        _cursors[network_id] = (pool_id, address + 1)


def _unleased_and_claimed(high: str) -> str:
    """SQL true for an address `a` (from :start to `high`) that has no lease and that this
    transaction has just claimed; false without claiming when it is leased.

    The range repeated inside EXISTS is not redundant: PostgreSQL may run the EXISTS as one
    hashed subplan over every lease it matches, which without the range was every lease of
    the Network (a /16 filling up got slower with each lease). Two-key advisory locks
    (network, address) live apart from the one-key named locks of core.db.advisory_lock; the
    address is shifted into PostgreSQL's signed 32-bit range."""
    return f"""CASE WHEN EXISTS (SELECT 1 FROM ip_leases
                          WHERE ip_leases.network_id = CAST(:network AS VARCHAR)
                            AND ip_leases.address = a
                            AND ip_leases.address BETWEEN CAST(:start AS BIGINT) AND {high})
             THEN false
             ELSE pg_try_advisory_xact_lock(hashtext(CAST(:network AS VARCHAR)),
                                            CAST(a - 2147483648 AS INTEGER))
        END"""


_CLAIM_FREE = text(f"""
    SELECT a FROM generate_series(CAST(:start AS BIGINT), CAST(:high AS BIGINT)) AS a
    WHERE {_unleased_and_claimed("CAST(:high AS BIGINT)")}
    LIMIT 1""")
_CLAIM_WINDOW = 64
_CLAIM_ONE = text("SELECT pg_advisory_xact_lock(hashtext(CAST(:network AS VARCHAR)), "
                  "CAST(CAST(:address AS BIGINT) - 2147483648 AS INTEGER))")


def _claim_from(session: Session, network_id: str, start: int, high: int) -> int | None:
    """The lowest address at or above `start` that has no lease and that no concurrent
    transaction is claiming; claimed for this transaction."""
    if not is_postgres(session):
        return _lowest_free_from(session, network_id, start, high)
    # generate_series is materialised whole: look through a window at a time, jumping runs
    # of leases with the gap search between windows.
    while start <= high:
        end = min(high, start + _CLAIM_WINDOW - 1)
        found = session.scalar(_CLAIM_FREE, {"start": start, "high": end, "network": network_id})
        if found is not None:
            return int(found)
        gap = _lowest_free_from(session, network_id, end + 1, high) if end < high else None
        if gap is None:
            return None
        start = gap
    return None


def claim_address(session: Session, network_id: str, address: int) -> None:
    """Wait until no concurrent allocation is claiming `address`, and keep others off it until
    this transaction ends (an explicit IP lock of a chosen address)."""
    if is_postgres(session):
        session.execute(_CLAIM_ONE, {"network": network_id, "address": address})


def first_free_address(session: Session, network_id: str, pool: IpPool, *,
                       lowest: bool = False) -> int | None:
    """A free usable address of the pool, claimed: next-fit from this process's cursor, or
    the lowest one (`lowest`, for an explicit IP lock chosen by a person)."""
    low, high = usable_bounds(pool)
    if low > high:
        return None
    cursor = _cursor_in(network_id, pool)
    if not lowest and cursor is not None and low <= cursor <= high:
        # Usually the very next address: claim it directly.
        found = _claim_from(session, network_id, cursor, high)
        if found is not None:
            _advance(network_id, pool.id, found)
            return found
    # First use in this process, or the top is full: jump the run of leases from the bottom.
    start = _lowest_free_from(session, network_id, low, high)
    found = None if start is None else _claim_from(session, network_id, start, high)
    if found is not None and not lowest:
        _cursors[network_id] = (pool.id, found + 1)
    return found


def _free_address(session: Session, network_id: str, pools: Sequence[IpPool], *,
                  lowest: bool = False) -> tuple[IpPool, int] | None:
    for pool in pools:
        address = first_free_address(session, network_id, pool, lowest=lowest)
        if address is not None:
            return pool, address
    return None


def _insert_lease(session: Session, thing: Thing, network_id: str, pool: IpPool, address: int,
                  kind: str, now: datetime) -> IpLease | None:
    """The new lease, or None when a lease committed meanwhile holds the address or the Thing
    (the caller looks again). No exception, so the transaction stays usable."""
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    lease = IpLease(id=new_id("lease"), account_id=thing.account_id, network_id=network_id,
                    pool_id=pool.id, thing_id=thing.id, address=address, kind=kind,
                    expires_at=None, created_at=now, updated_at=now)
    inserted = session.scalar(insert(IpLease).values(
        id=lease.id, account_id=lease.account_id, network_id=network_id, pool_id=pool.id,
        thing_id=thing.id, address=address, kind=kind, expires_at=None, created_at=now,
        updated_at=now).on_conflict_do_nothing().returning(IpLease.id))
    if inserted is None:
        return None
    make_transient_to_detached(lease)
    session.add(lease)  # the row exists: the session tracks it without another SELECT
    return lease


def current_lease(session: Session, network_id: str, thing_id: str) -> IpLease | None:
    return session.scalar(select(IpLease).where(IpLease.network_id == network_id,
                                                IpLease.thing_id == thing_id))


def pool_containing(pools: Sequence[IpPool], address: int) -> IpPool | None:
    return next((p for p in pools if p.first_address <= address <= p.last_address), None)


def network_of_thing(session: Session, thing: Thing) -> str:
    from ..models import ThingsGroup

    return session.scalar(select(ThingsGroup.network_id).where(  # type: ignore[return-value]
        ThingsGroup.account_id == thing.account_id, ThingsGroup.id == thing.things_group_id))


@dataclass(frozen=True, slots=True)
class Assignment:
    """The address a Thing holds on the Network, and whether this call leased it. The lease
    row itself is not built as an ORM object: nothing downstream reads more than its address,
    and building and tracking one was a tenth of an allocation's Python."""

    address: int
    created: bool


# A lease committed between the search's snapshot and its claim sends the allocation round
# again (the insert finds the address taken). Every such round means another allocation
# committed meanwhile, so the pool is filling (no livelock); 8 rounds were too few when 8
# threads filled a /16 on an overloaded machine.
_ATTEMPTS = 64


# The CTEs both take statements start with: the Network's expired dynamic leases deleted and
# their Things' addresses cleared.
_PURGE_EXPIRED = """purged AS (
        DELETE FROM ip_leases
        WHERE network_id = CAST(:network AS VARCHAR) AND kind = 'DYNAMIC'
          AND expires_at < CAST(:now AS TIMESTAMPTZ)
        RETURNING thing_id),
    cleared AS (
        UPDATE things SET ip_address = NULL WHERE id IN (SELECT thing_id FROM purged))"""


# The common case on PostgreSQL in one round trip: purge the Network's expired leases, claim
# the lowest free address in a window from this process's cursor (in the pool holding the
# cursor) unless the Thing holds a lease, insert the lease, show it on the Thing. Every CTE sees
# the snapshot from before the statement, so a just-purged address is not reused in the same
# breath. The last columns say why nothing was inserted: the Thing holds a lease (`held`), the
# cursor is in no pool of the Network (no `high`), the window had nothing free (no
# `candidate`), or a lease committed after the snapshot holds the candidate (the insert did
# nothing).
_TAKE_NEXT = text(f"""
    WITH {_PURGE_EXPIRED},
    held AS (
        SELECT 1 FROM ip_leases
        WHERE network_id = CAST(:network AS VARCHAR) AND thing_id = CAST(:thing AS VARCHAR)),
    pool AS (
        SELECT id, last_address - 1 AS high FROM ip_pools
        WHERE id = CAST(:pool AS VARCHAR) AND account_id = CAST(:account AS VARCHAR)
          AND network_id = CAST(:network AS VARCHAR)
          AND CAST(:start AS BIGINT) BETWEEN first_address + 2 AND last_address - 1),
    candidate AS (
        SELECT a, pool.id AS pool_id
        FROM pool, generate_series(CAST(:start AS BIGINT),
                                   LEAST(pool.high, CAST(:start AS BIGINT) + :window - 1)) AS a
        WHERE NOT EXISTS (SELECT 1 FROM held)
          AND {_unleased_and_claimed("CAST(:start AS BIGINT) + :window - 1")}
        LIMIT 1),
    lease AS (
        INSERT INTO ip_leases (id, account_id, network_id, pool_id, thing_id, address, kind,
                               expires_at, created_at, updated_at)
        SELECT :lease, :account, CAST(:network AS VARCHAR), pool_id, CAST(:thing AS VARCHAR), a,
               'DYNAMIC', NULL, CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
        FROM candidate
        ON CONFLICT DO NOTHING
        RETURNING address),
    shown AS (
        UPDATE things SET ip_address = host(CAST('0.0.0.0' AS inet) + lease.address),
                          updated_at = CAST(:now AS TIMESTAMPTZ)
        FROM lease WHERE things.id = CAST(:thing AS VARCHAR)
        RETURNING lease.address)
    SELECT shown.address, (SELECT a FROM candidate), EXISTS (SELECT 1 FROM held),
           (SELECT high FROM pool)
    FROM (SELECT 1) AS one LEFT JOIN shown ON true""")
# Run as the driver's own SQL: the statement runs once per attach, and SQLAlchemy's
# per-execution work for a text() statement (cache key, bind processing, result metadata)
# was a tenth of an allocation's CPU.
_TAKE_NEXT_DRIVER_SQL = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", _TAKE_NEXT.text)
# A candidate found taken at insert was handed out by a concurrent allocation that committed
# during the statement: the next statement (a fresh snapshot) looks past it. A full window
# (this thread's cursor was read before other threads handed out the addresses past it) sends
# the next statement to the next window.
_FAST_ROUNDS = 8


def _take_next_postgres(session: Session, thing: Thing, network_id: str,
                        now: datetime) -> Assignment | None:
    """None when the Thing holds a lease, this process has no cursor in the Network yet, the
    cursor's pool has nothing free above it, or the races persist: the caller takes the
    general path (the purge is done either way)."""
    with _hint_lock:
        cursor = _cursors.get(network_id)
        if cursor is not None:
            # The next allocation of this process starts one further on: concurrent ones
            # start on different addresses instead of racing for the same candidate.
            _cursors[network_id] = (cursor[0], cursor[1] + 1)
    if cursor is None:
        purge_expired(session, network_id, now)
        return None
    pool_id, start = cursor
    with session.connection().connection.cursor() as dbapi:
        for _ in range(_FAST_ROUNDS):
            lease_id = new_id("lease")
            dbapi.execute(_TAKE_NEXT_DRIVER_SQL, {
                "start": start, "window": _CLAIM_WINDOW, "pool": pool_id, "network": network_id,
                "lease": lease_id, "account": thing.account_id, "thing": thing.id, "now": now})
            address, candidate, held, high = dbapi.fetchone()
            if address is not None:
                break
            if held or high is None:
                return None
            start = candidate + 1 if candidate is not None else start + _CLAIM_WINDOW
            if start > high:
                return None
        else:
            return None
    _advance(network_id, pool_id, address)
    set_committed_value(thing, "ip_address", str(ipaddress.IPv4Address(address)))
    set_committed_value(thing, "updated_at", now)
    return Assignment(address, True)


def allocate_dynamic(session: Session, thing: Thing, network_id: str) -> Assignment | None:
    """The Thing's locked or unexpired address on this Network, else a free one; None when
    every pool is full (the caller raises `pool_exhausted`)."""
    now = utcnow()
    if is_postgres(session):
        taken = _take_next_postgres(session, thing, network_id, now)
        if taken is not None:
            return taken
    else:
        purge_expired(session, network_id, now)
    pools = pools_of(session, thing.account_id, network_id)
    for _ in range(_ATTEMPTS):
        lease = current_lease(session, network_id, thing.id)
        if lease is not None:
            if lease.kind == DYNAMIC:
                lease.expires_at = None  # a session holds it now; Stop restarts the clock
            return Assignment(lease.address, False)
        found = _free_address(session, network_id, pools)
        if found is None:
            return None
        pool, address = found
        lease = _insert_lease(session, thing, network_id, pool, address, DYNAMIC, now)
        if lease is not None:
            thing.ip_address = str(ipaddress.IPv4Address(address))
            session.flush()
            return Assignment(address, True)
    raise RuntimeError(f"no lease for Thing {thing.id} after {_ATTEMPTS} attempts")


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
        claim_address(session, network_id, address)
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
        found = _free_address(session, network_id, pools, lowest=True)
        if found is None:
            raise precondition("pool_exhausted", f"no address is free in Network {network_id}")
        pool, address = found
        lease = _insert_lease(session, thing, network_id, pool, address, LOCKED, now)
        if lease is None:
            raise precondition("ip_in_use", "the address found was taken at the same moment; "
                               "try again")
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


def allocate_dynamic_many(session: Session, things: Sequence[Thing],
                          network_id: str) -> list[Assignment | None]:
    """`allocate_dynamic` for several Things of one Network, in the caller's transaction (the
    RADIUS server decides the Access-Requests that arrive together in one transaction and
    commits them once). On PostgreSQL the Things that hold no lease get theirs from one
    statement (`_TAKE_NEXT_MANY`: the batch form of `_TAKE_NEXT`), so a batch costs two round
    trips rather than two per Thing; the rest, and whatever that statement could not serve,
    go through `allocate_dynamic` one by one."""
    if not is_postgres(session) or len(things) < 2:
        return [allocate_dynamic(session, thing, network_id) for thing in things]
    pools = pools_of(session, things[0].account_id, network_id)
    taken = _take_next_many_postgres(session, things, network_id, pools, utcnow())
    # A Thing named twice gets its new lease once; the second time it already holds it.
    return [taken.pop(thing.id, None) or allocate_dynamic(session, thing, network_id)
            for thing in things]


# `_TAKE_NEXT` for many Things: the Things that hold no lease (in the order given) are paired
# with the lowest free addresses claimed from the cursor's window, in address order.
_TAKE_NEXT_MANY = text(f"""
    WITH {_PURGE_EXPIRED},
    wanted AS (
        SELECT w.thing, w.lease, row_number() OVER (ORDER BY w.n) AS n
        FROM unnest(CAST(:things AS VARCHAR[]), CAST(:leases AS VARCHAR[]))
             WITH ORDINALITY AS w(thing, lease, n)
        WHERE NOT EXISTS (SELECT 1 FROM ip_leases
                          WHERE network_id = CAST(:network AS VARCHAR)
                            AND thing_id = w.thing)),
    candidate AS (
        SELECT c.a, row_number() OVER (ORDER BY c.a) AS n
        FROM ({_CLAIM_FREE.text.replace("LIMIT 1", "LIMIT :count")}) AS c),
    lease AS (
        INSERT INTO ip_leases (id, account_id, network_id, pool_id, thing_id, address, kind,
                               expires_at, created_at, updated_at)
        SELECT wanted.lease, :account, CAST(:network AS VARCHAR), :pool, wanted.thing,
               candidate.a, 'DYNAMIC', NULL, CAST(:now AS TIMESTAMPTZ),
               CAST(:now AS TIMESTAMPTZ)
        FROM wanted JOIN candidate USING (n)
        ON CONFLICT DO NOTHING
        RETURNING thing_id, address)
    UPDATE things SET ip_address = host(CAST('0.0.0.0' AS inet) + lease.address),
                      updated_at = CAST(:now AS TIMESTAMPTZ)
    FROM lease WHERE things.id = lease.thing_id
    RETURNING lease.thing_id, lease.address""")


def _take_next_many_postgres(session: Session, things: Sequence[Thing], network_id: str,
                             pools: Sequence[IpPool], now: datetime) -> dict[str, Assignment]:
    """The new leases by Thing id; Things left out take the general path."""
    pool: IpPool | None = None
    cursor: int | None = None
    for candidate in pools:
        low, high = usable_bounds(candidate)
        at = _cursor_in(network_id, candidate)
        if at is not None and low <= at <= high:
            pool, cursor = candidate, at
            break
    if pool is None and pools:
        pool = pools[0]
        cursor = usable_bounds(pool)[0]
    if pool is None or cursor is None:
        purge_expired(session, network_id, now)
        return {}
    high = usable_bounds(pool)[1]
    by_id = {thing.id: thing for thing in things}
    count = len(by_id)
    rows = session.execute(_TAKE_NEXT_MANY, {
        "start": cursor, "high": min(high, cursor + max(_CLAIM_WINDOW, 2 * count) - 1),
        "count": count, "network": network_id, "things": list(by_id),
        "leases": [new_id("lease") for _ in by_id], "account": things[0].account_id,
        "pool": pool.id, "now": now}).all()
    taken: dict[str, Assignment] = {}
    for thing_id, address in rows:
        thing = by_id[thing_id]
        set_committed_value(thing, "ip_address", str(ipaddress.IPv4Address(address)))
        set_committed_value(thing, "updated_at", now)
        taken[thing_id] = Assignment(address, True)
    if rows:
        _advance(network_id, pool.id, max(address for _, address in rows))
    return taken
