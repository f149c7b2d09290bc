from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    exists,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from ..core.db import is_postgres
from ..core.reads import ReadTransaction
from ..models import (
    DataSession,
    ImeiObservation,
    IpLease,
    Network,
    Thing,
    ThingsGroup,
    ThingStateChange,
    ThingTag,
    UsageDaily,
)


_things = Thing.__table__
_tags = ThingTag.__table__
_leases = IpLease.__table__
_networks = Network.__table__

# What a Thing's representation reads, in the order `service.thing_document` unpacks a row:
# by position, which for a page of 100 costs half what building a dict of each row by name
# does.
THING_COLUMNS = tuple(_things.c[name] for name in (
    "id", "iccid", "imsi", "name", "state", "things_group_id", "service_data", "service_sms",
    "imei", "imei_lock", "ip_address", "ip_locked", "connection_status", "connection_since",
    "connection_rat", "connection_country", "connection_operator", "connection_session_id",
    "created_at", "updated_at", "activated_at"))

# The reads of the API's hottest routes are Core statements built once, with bound
# parameters: building a statement and computing its cache key cost more than running it, and
# plain rows skip the ORM's identity map, which a read that changes nothing does not need.
_THING_ROW = select(*THING_COLUMNS).where(_things.c.account_id == bindparam("account_id"),
                                          _things.c.id == bindparam("thing_id"))


class _CommaJoined(FunctionElement[str]):
    """The text of an aggregate's values joined by ",": PostgreSQL's string_agg, SQLite's
    group_concat. SQLAlchemy's `aggregate_strings` binds its separator as a literal rendered
    per call, which `core.reads` (statements compiled once) cannot run."""

    type = String()
    inherit_cache = True


@compiles(_CommaJoined, "postgresql")
def _string_agg(element: _CommaJoined, compiler: Any, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ',')"


@compiles(_CommaJoined, "sqlite")
def _group_concat(element: _CommaJoined, compiler: Any, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ',')"


# A row's tags as one more column of the rows' own statement, on both engines: joined by ","
# (TAG_PATTERN has no comma), in no particular order (`service.thing_document` sorts them),
# NULL for none. A page's tags then cost no statement or round trip of their own (SQLite read
# them with one more). On PostgreSQL they were an array in tag order: a sort per Thing, and an
# array to decode and process. As text in any order, a page of 100 runs ~2,550-3,050 times a
# second where it ran ~2,100-2,500 (pgbench, 2 clients; ~6,200-7,100 with no tags at all), and
# reading it costs the server's Python ~0.2 ms less (~0.8 -> ~0.6 ms).
_TAGS_TEXT = (select(_CommaJoined(_tags.c.tag))
              .where(_tags.c.account_id == _things.c.account_id,
                     _tags.c.thing_id == _things.c.id)
              .scalar_subquery().label("tags"))
_THING_ROW_TAGGED = _THING_ROW.add_columns(_TAGS_TEXT)
# Where a row of `thing_row` or `thing_rows` holds its tags.
_TAGS_OF_ROW = len(THING_COLUMNS)
_TAGS = (select(_tags.c.thing_id, _tags.c.tag)
         .where(_tags.c.account_id == bindparam("account_id"),
                _tags.c.thing_id.in_(bindparam("thing_ids", expanding=True)))
         .order_by(_tags.c.thing_id, _tags.c.tag))
# PostgreSQL, for a session (`tags_of`): the ids as one array parameter. An expanding IN
# renders a new statement text per call (a placeholder per id) and psycopg parses it afresh
# each time; `= ANY(array)` is one text, prepared once. The array is bound as its text
# (`_array_text`): psycopg dumps a list element by element in Python (~6 % of a page of 100
# when the reads used this statement).
_TAGS_PG = (select(_tags.c.thing_id, _tags.c.tag)
            .where(_tags.c.account_id == bindparam("account_id"),
                   _tags.c.thing_id == any_(cast(bindparam("thing_ids", type_=String),
                                                 ARRAY(String))))
            .order_by(_tags.c.thing_id, _tags.c.tag))


def _array_text(ids: Sequence[str]) -> str:
    """PostgreSQL's text of an array of ids. Ids are letters, digits and `_`
    (`core.ids`), which an array literal takes without quotes."""
    return "{" + ",".join(ids) + "}"

# Built once: building a statement and computing its cache key cost a transaction that loads
# a Thing and takes it an address ~8-14 % of its CPU (~820-860 -> ~740-750 us).
_THING = select(Thing).where(Thing.account_id == bindparam("account_id"),
                             Thing.id == bindparam("thing_id"))
_THING_FOR_UPDATE = _THING.with_for_update()


def get_thing(session: Session, account_id: str, thing_id: str, *,
              for_update: bool = False) -> Thing | None:
    return session.scalar(_THING_FOR_UPDATE if for_update else _THING,
                          {"account_id": account_id, "thing_id": thing_id})


async def thing_row(read: ReadTransaction, account_id: str,
                    thing_id: str) -> Sequence[Any] | None:
    """A Thing's `THING_COLUMNS` and its tags after them (`tags_of_row`), read only (for a
    change, `get_thing`)."""
    return await read.first(_THING_ROW_TAGGED, {"account_id": account_id, "thing_id": thing_id})


def tags_of_row(row: Sequence[Any]) -> list[str]:
    """The tags of a row of `thing_row` or `thing_rows`, in no particular order."""
    joined = row[_TAGS_OF_ROW]
    return joined.split(",") if joined else []


def tags_of(session: Session, account_id: str, thing_ids: Sequence[str]) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {thing_id: [] for thing_id in thing_ids}
    if not thing_ids:
        return tags
    postgres = is_postgres(session)
    # Fetched at once: iterating the result fetches row by row through two layers of Python.
    rows = session.execute(_TAGS_PG if postgres else _TAGS, {
        "account_id": account_id,
        "thing_ids": _array_text(thing_ids) if postgres else list(thing_ids)}).all()
    for thing_id, tag in rows:
        tags[thing_id].append(tag)
    return tags


# The columns a list can be filtered on by equality (the query parameters of the same names).
FILTER_COLUMNS = ("state", "things_group_id", "iccid", "imsi", "imei", "ip_address",
                  "connection_status")


def _showing(address: Any, number: Any, account_id: Any) -> ColumnElement[bool]:
    """The Things showing `address` (`number` is the same address as an integer), found
    through their leases: a Thing shows an address only while it holds a lease of it, and
    ip_leases has the index to look an address up by, (network, address). `things` has none on
    ip_address on purpose: every attach writes that column, and an index on it made each of
    those writes a new row version in all seven of the table's indexes instead of a HOT
    update (migration 0013)."""
    leased = select(_leases.c.thing_id).where(
        _leases.c.account_id == account_id,
        _leases.c.network_id.in_(select(_networks.c.id).where(_networks.c.account_id == account_id)),
        _leases.c.address == number)
    return and_(_things.c.ip_address == address, _things.c.id.in_(leased))


def address_number(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


def _tagged(tag: Any, account_id: Any) -> ColumnElement[bool]:
    return exists().where(_tags.c.thing_id == _things.c.id, _tags.c.account_id == account_id,
                          _tags.c.tag == tag)


def _filters(account_id: str, *, state: str | None, things_group_id: str | None,
             tags: Sequence[str], iccid: str | None, imsi: str | None, imei: str | None,
             ip_address: str | None, connection_status: str | None) -> list[ColumnElement[bool]]:
    criteria: list[ColumnElement[bool]] = [_things.c.account_id == account_id]
    for name, value in zip(FILTER_COLUMNS, (state, things_group_id, iccid, imsi, imei,
                                            ip_address, connection_status), strict=True):
        if name == "ip_address" and value is not None:
            criteria.append(_showing(value, address_number(value), account_id))
        elif value is not None:
            criteria.append(_things.c[name] == value)
    for tag in dict.fromkeys(tags):
        criteria.append(_tagged(tag, account_id))
    return criteria


def things_query(account_id: str, *, state: str | None = None,
                 things_group_id: str | None = None, tags: Sequence[str] = (),
                 iccid: str | None = None, imsi: str | None = None, imei: str | None = None,
                 ip_address: str | None = None,
                 connection_status: str | None = None) -> Select[tuple[Thing]]:
    """The account's Things matching every filter given, as ORM objects."""
    return select(Thing).where(*_filters(
        account_id, state=state, things_group_id=things_group_id, tags=tags, iccid=iccid,
        imsi=imsi, imei=imei, ip_address=ip_address, connection_status=connection_status))


@lru_cache(maxsize=256)
def _rows_page(filtered: tuple[str, ...], tag_count: int, after: bool) -> Select[Any]:
    """The list's statement for one shape of request (which filters, how many tags, whether
    after a cursor), every value a bound parameter: built and cache-keyed once per shape
    rather than once per request, which cost a page as much as reading its rows."""
    account_id = bindparam("account_id")
    criteria = [_things.c.account_id == account_id]
    criteria += [_showing(bindparam(name), bindparam("ip_number"), account_id)
                 if name == "ip_address" else _things.c[name] == bindparam(name)
                 for name in filtered]
    criteria += [_tagged(bindparam(f"tag_{n}"), account_id) for n in range(tag_count)]
    if after:
        criteria.append(_things.c.id > bindparam("after"))
    return (select(*THING_COLUMNS, _TAGS_TEXT).where(*criteria).order_by(_things.c.id)
            .limit(bindparam("fetch")))


def thing_id_of_row(row: Sequence[Any]) -> str:
    """The id of a row of `THING_COLUMNS` (the first)."""
    return row[0]  # type: ignore[no-any-return]


async def thing_rows(read: ReadTransaction, account_id: str, *,
                     filters: dict[str, str | None], tags: Sequence[str] = (),
                     after: str | None, fetch: int) -> list[Sequence[Any]]:
    """Up to `fetch` rows of `THING_COLUMNS` and tags (`tags_of_row`), in id order after the
    id `after`, of the account's Things matching every filter given (`filters` by
    FILTER_COLUMNS name, None for none) and carrying every tag; for reading: what
    `things_query` selects."""
    values = {name: value for name, value in filters.items() if value is not None}
    unique = list(dict.fromkeys(tags))
    statement = _rows_page(tuple(name for name in FILTER_COLUMNS if name in values),
                           len(unique), after is not None)
    params: dict[str, Any] = {"account_id": account_id, "fetch": fetch, **values}
    if "ip_address" in values:
        params["ip_number"] = address_number(values["ip_address"])
    params.update((f"tag_{n}", tag) for n, tag in enumerate(unique))
    if after is not None:
        params["after"] = after
    return await read.all(statement, params)


def get_group(session: Session, account_id: str, group_id: str) -> ThingsGroup | None:
    return session.scalar(select(ThingsGroup).where(ThingsGroup.account_id == account_id,
                                                    ThingsGroup.id == group_id))


def default_group(session: Session, account_id: str) -> ThingsGroup:
    group = session.scalar(select(ThingsGroup).where(ThingsGroup.account_id == account_id,
                                                     ThingsGroup.is_default.is_(True)))
    assert group is not None, f"account {account_id} has no default Things Group"
    return group


def state_history_query(account_id: str, thing_id: str) -> Select[tuple[ThingStateChange]]:
    return select(ThingStateChange).where(ThingStateChange.account_id == account_id,
                                          ThingStateChange.thing_id == thing_id)


def existing_identifiers(session: Session, column, values: Sequence[str]) -> set[str]:  # type: ignore[no-untyped-def]
    """Which of `values` some Thing (of any account: SIM ids are unique worldwide) already has."""
    found: set[str] = set()
    for start in range(0, len(values), 500):
        chunk = list(values[start:start + 500])
        found.update(session.scalars(select(column).where(column.in_(chunk))))
    return found


def sessions_query(account_id: str, thing_id: str,
                   status: str | None) -> Select[tuple[DataSession]]:
    statement = select(DataSession).where(DataSession.account_id == account_id,
                                          DataSession.thing_id == thing_id)
    return statement.where(DataSession.status == status) if status else statement


def daily_usage(session: Session, account_id: str, thing_id: str, start: date,
                end: date) -> list[UsageDaily]:
    return list(session.scalars(select(UsageDaily).where(
        UsageDaily.account_id == account_id, UsageDaily.thing_id == thing_id,
        UsageDaily.day >= start, UsageDaily.day <= end).order_by(UsageDaily.day)))


def imei_history_query(account_id: str, thing_id: str) -> Select[tuple[ImeiObservation]]:
    return select(ImeiObservation).where(ImeiObservation.account_id == account_id,
                                         ImeiObservation.thing_id == thing_id)
