"""What an accounting batch reads, as plain rows, and what it writes back.

A batch of Accounting-Requests used to load its Things, sessions and leases as ORM objects and
write them back through the unit of work: per batch about a dozen statements built, looked up
in the compiled cache and flushed, which cost more Python than the rows themselves (the better
part of a request's CPU at the ~10 requests a batch that `serve` sees). Here each read exists
once, built at import with expanding parameters, and runs on the session's connection; the
changes go back with the batch's other rows through `core.db.write_rows` (one statement on
PostgreSQL). No statement construction, no identity map, no flush bookkeeping.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Result, bindparam, select, union

from ..core.db import Rows
from ..models import DataSession, IpLease, IpPool, Thing, ThingsGroup

_things = Thing.__table__
_groups = ThingsGroup.__table__
_sessions = DataSession.__table__
_leases = IpLease.__table__
_pools = IpPool.__table__

# What the batch reads of a Thing and may change (the latter written back when changed).
THING_COLUMNS = ("id", "account_id", "imsi", "things_group_id", "ip_address", "imei",
                 "connection_status", "connection_since", "connection_rat",
                 "connection_country", "connection_operator", "connection_session_id",
                 "updated_at")
THING_CHANGES = ("imei", "connection_status", "connection_since", "connection_rat",
                 "connection_country", "connection_operator", "connection_session_id",
                 "updated_at")
SESSION_COLUMNS = ("id", "account_id", "thing_id", "network_id", "nas_address",
                   "nas_identifier", "acct_session_id", "framed_ip", "imsi", "rat", "operator",
                   "country", "status", "started_at", "last_update_at", "ended_at", "bytes_up",
                   "bytes_down", "terminate_cause", "disconnect_status", "disconnect_reason",
                   "disconnect_attempts", "disconnect_at")
LEASE_CHANGES = ("expires_at",)
SESSION_CHANGES = ("status", "last_update_at", "ended_at", "bytes_up", "bytes_down",
                   "terminate_cause")

_thing_select = select(*(_things.c[name] for name in THING_COLUMNS), _groups.c.network_id).join(
    _groups, (_groups.c.account_id == _things.c.account_id)
    & (_groups.c.id == _things.c.things_group_id))
_session_select = select(*(_sessions.c[name] for name in SESSION_COLUMNS))

# The Things the records name and those of their known sessions, locked in id order as every
# batch locks them (two batches never wait on each other crosswise), with their Networks. Both
# session columns as lists, which the unique index answers (a list of pairs would be read as
# the NAS's every session); the caller drops the pairs that are not keys.
_THINGS_OF_RECORDS = _thing_select.where(_things.c.id.in_(union(
    select(_things.c.id).where(_things.c.imsi.in_(bindparam("imsis", expanding=True))),
    select(_sessions.c.thing_id).where(
        _sessions.c.nas_address.in_(bindparam("nas", expanding=True)),
        _sessions.c.acct_session_id.in_(bindparam("sids", expanding=True))))
)).order_by(_things.c.id).with_for_update(of=_things)
_THINGS_BY_ID = _thing_select.where(_things.c.id.in_(bindparam("ids", expanding=True))) \
    .order_by(_things.c.id).with_for_update(of=_things)
_SESSIONS_OF_RECORDS = _session_select.where(
    _sessions.c.nas_address.in_(bindparam("nas", expanding=True)),
    _sessions.c.acct_session_id.in_(bindparam("sids", expanding=True))).with_for_update()
_OPEN_SESSIONS_OF_NAS = _session_select.where(
    _sessions.c.nas_address == bindparam("nas"), _sessions.c.status == "OPEN").with_for_update()
_LEASES_OF_THINGS = select(
    _leases.c.id, _leases.c.network_id, _leases.c.thing_id, _leases.c.kind,
    _leases.c.expires_at, _pools.c.lease_seconds,
).join(_pools, _pools.c.id == _leases.c.pool_id).where(
    _leases.c.thing_id.in_(bindparam("things", expanding=True))).with_for_update(of=_leases)

class Row:
    """A row read (or made) by the batch, as attributes; `changes` tells what to write back."""

    __slots__ = ("__dict__", "_read", "new")

    def __init__(self, values: dict[str, Any], tracked: Sequence[str], *,
                 new: bool = False) -> None:
        self.__dict__.update(values)
        self.new = new
        self._read = None if new else tuple(values[name] for name in tracked)

    def changed(self, tracked: Sequence[str]) -> bool:
        return self._read != tuple(getattr(self, name) for name in tracked)

    def written(self, tracked: Sequence[str]) -> None:
        self.new = False
        self._read = tuple(getattr(self, name) for name in tracked)


def _rows(result: Result[Any], tracked: Sequence[str]) -> list[Row]:
    names = tuple(result.keys())
    return [Row(dict(zip(names, row)), tracked) for row in result]


def things_of_records(connection: Connection, imsis: Collection[str],
                      keys: Collection[tuple[str, str]]) -> list[Row]:
    return _rows(connection.execute(_THINGS_OF_RECORDS, {
        "imsis": list(imsis), "nas": list({nas for nas, _ in keys}),
        "sids": list({sid for _, sid in keys})}), THING_CHANGES)


def things_by_id(connection: Connection, ids: Collection[str]) -> list[Row]:
    return _rows(connection.execute(_THINGS_BY_ID, {"ids": list(ids)}), THING_CHANGES)


def sessions_of_records(connection: Connection, keys: Collection[tuple[str, str]]) -> list[Row]:
    rows = connection.execute(_SESSIONS_OF_RECORDS, {
        "nas": list({nas for nas, _ in keys}), "sids": list({sid for _, sid in keys})})
    return [row for row in _rows(rows, SESSION_CHANGES)
            if (row.nas_address, row.acct_session_id) in keys]


def open_sessions_of_nas(connection: Connection, nas_address: str) -> list[Row]:
    return _rows(connection.execute(_OPEN_SESSIONS_OF_NAS, {"nas": nas_address}),
                 SESSION_CHANGES)


def leases_of_things(connection: Connection, thing_ids: Collection[str]) -> list[Row]:
    return _rows(connection.execute(_LEASES_OF_THINGS, {"things": list(thing_ids)}),
                 LEASE_CHANGES)


def new_session(values: dict[str, Any]) -> Row:
    return Row(values, SESSION_CHANGES, new=True)


def changes(things: Iterable[Row], sessions: Iterable[Row], leases: Iterable[Row],
            now: datetime) -> list[Rows]:
    """What the batch changed, for `core.db.write_rows`, in the order the unit of work wrote
    them (Things, then their sessions, then leases); the rows are all locked already. Marked
    written: a batch may write more than once (Accounting-On reads the NAS's sessions after
    the batch's earlier changes)."""
    changed_things = [t for t in things if t.changed(THING_CHANGES)]
    new = [s for s in sessions if s.new]
    changed = [s for s in sessions if not s.new and s.changed(SESSION_CHANGES)]
    changed_leases = [lease for lease in leases if lease.changed(LEASE_CHANGES)]
    shares = [
        Rows(_things, [{name: getattr(t, name) for name in ("id", *THING_CHANGES)}
                       for t in changed_things], keys=("id",), update=True),
        Rows(_sessions, [{name: getattr(s, name) for name in SESSION_COLUMNS} for s in new]),
        Rows(_sessions, [{name: getattr(s, name) for name in ("id", *SESSION_CHANGES)}
                         for s in changed], keys=("id",), update=True),
        # `updated_at` as the ORM's onupdate set it: when the expiry actually changed.
        Rows(_leases, [{"id": lease.id, "expires_at": lease.expires_at, "updated_at": now}
                       for lease in changed_leases], keys=("id",), update=True)]
    for thing in changed_things:
        thing.written(THING_CHANGES)
    for record in (*new, *changed):
        record.written(SESSION_CHANGES)
    for lease in changed_leases:
        lease.written(LEASE_CHANGES)
    return shares
