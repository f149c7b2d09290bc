"""What an accounting batch reads, as plain rows, and what it writes back.

A batch of Accounting-Requests used to load its Things, sessions and leases as ORM objects and
write them back through the unit of work: per batch about a dozen statements built, looked up
in the compiled cache and flushed, which cost more Python than the rows themselves (the better
part of a request's CPU at the ~10 requests a batch that `serve` sees). Here each read exists
once per dialect (`_statements`), built on first use, and runs on the session's connection; the
changes go back with the batch's other rows through `core.db.write_rows` (one statement on
PostgreSQL). No statement construction, no identity map, no flush bookkeeping.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, Connection, Result, any_, bindparam, func, select, union

from ..core.db import Rows
from ..models import DataSession, IpLease, IpPool, Thing, ThingsGroup
from ..webhooks.service import enabled_webhooks_column

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


def _thing_select(postgres: bool):  # type: ignore[no-untyped-def]
    """A Thing's columns with its Network; on PostgreSQL with its account's enabled webhooks
    too (`webhooks`), which the events the batch raises need, for no round trip of their own."""
    columns = [*(_things.c[name] for name in THING_COLUMNS), _groups.c.network_id]
    if postgres:
        columns.append(enabled_webhooks_column(_things.c.account_id).label("webhooks"))
    return select(*columns).join(_groups, (_groups.c.account_id == _things.c.account_id)
                                 & (_groups.c.id == _things.c.things_group_id))


_session_select = select(*(_sessions.c[name] for name in SESSION_COLUMNS))

def _member(column, name: str, postgres: bool):  # type: ignore[no-untyped-def]
    """`column` is one of the list parameter `name`. PostgreSQL: `= ANY(array)`, one statement
    text whatever the list's length, so psycopg prepares it and the server plans it once (an
    expanding IN was a new text, rendered by SQLAlchemy and planned by the server, for every
    length of every list). Elsewhere an expanding IN."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@dataclass(frozen=True)
class _Statements:
    things_of_records: Any
    things_of_records_locking: Any
    things_by_id: Any
    sessions_of_records: Any
    open_sessions_of_nas: Any
    leases_of_things: Any


@lru_cache(maxsize=2)
def _statements_for(postgres: bool) -> _Statements:
    def member(column, name):  # type: ignore[no-untyped-def]
        return _member(column, name, postgres)

    # The Things the records name and those of their known sessions, locked in id order as
    # every batch locks them (two batches never wait on each other crosswise), with their
    # Networks. Both session columns as lists, which the unique index answers (a list of pairs
    # would be read as the NAS's every session); the caller drops the pairs that are not keys.
    things_of_records = _thing_select(postgres).where(_things.c.id.in_(union(
        select(_things.c.id).where(member(_things.c.imsi, "imsis")),
        select(_sessions.c.thing_id).where(member(_sessions.c.nas_address, "nas"),
                                           member(_sessions.c.acct_session_id, "sids")))
    )).order_by(_things.c.id).with_for_update(of=_things)
    return _Statements(
        things_of_records=things_of_records,
        # The same, taking a shared advisory lock too (PostgreSQL, `core.db.advisory_lock`):
        # the one usage writers hold, in this statement rather than one of its own.
        things_of_records_locking=things_of_records.add_columns(
            func.pg_advisory_xact_lock_shared(func.hashtext(bindparam("lock"))).label("locked"))
        if postgres else things_of_records,
        things_by_id=_thing_select(postgres).where(member(_things.c.id, "ids"))
        .order_by(_things.c.id).with_for_update(of=_things),
        sessions_of_records=_session_select.where(
            member(_sessions.c.nas_address, "nas"),
            member(_sessions.c.acct_session_id, "sids")).with_for_update(),
        open_sessions_of_nas=_session_select.where(
            _sessions.c.nas_address == bindparam("nas"),
            _sessions.c.status == "OPEN").with_for_update(),
        leases_of_things=select(
            _leases.c.id, _leases.c.network_id, _leases.c.thing_id, _leases.c.kind,
            _leases.c.expires_at, _pools.c.lease_seconds,
        ).join(_pools, _pools.c.id == _leases.c.pool_id).where(
            member(_leases.c.thing_id, "things")).with_for_update(of=_leases))


def _statements(connection: Connection) -> _Statements:
    return _statements_for(connection.dialect.name == "postgresql")


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
                      keys: Collection[tuple[str, str]], *,
                      shared_lock: str | None = None) -> list[Row]:
    """With `shared_lock` on PostgreSQL, the statement also takes that advisory lock, shared,
    when it finds a Thing (the rows then say `locked`)."""
    statements = _statements(connection)
    parameters = {"imsis": list(imsis), "nas": list({nas for nas, _ in keys}),
                  "sids": list({sid for _, sid in keys})}
    if shared_lock is None:
        return _rows(connection.execute(statements.things_of_records, parameters),
                     THING_CHANGES)
    return _rows(connection.execute(statements.things_of_records_locking,
                                    {**parameters, "lock": shared_lock}), THING_CHANGES)


def things_by_id(connection: Connection, ids: Collection[str]) -> list[Row]:
    return _rows(connection.execute(_statements(connection).things_by_id, {"ids": list(ids)}),
                 THING_CHANGES)


def sessions_of_records(connection: Connection, keys: Collection[tuple[str, str]]) -> list[Row]:
    rows = connection.execute(_statements(connection).sessions_of_records, {
        "nas": list({nas for nas, _ in keys}), "sids": list({sid for _, sid in keys})})
    return [row for row in _rows(rows, SESSION_CHANGES)
            if (row.nas_address, row.acct_session_id) in keys]


def open_sessions_of_nas(connection: Connection, nas_address: str) -> list[Row]:
    return _rows(connection.execute(_statements(connection).open_sessions_of_nas,
                                    {"nas": nas_address}),
                 SESSION_CHANGES)


def leases_of_things(connection: Connection, thing_ids: Collection[str]) -> list[Row]:
    return _rows(connection.execute(_statements(connection).leases_of_things,
                                    {"things": list(thing_ids)}),
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
