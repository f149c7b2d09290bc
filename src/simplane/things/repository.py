from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from ..models import (
    DataSession,
    ImeiObservation,
    Thing,
    ThingsGroup,
    ThingStateChange,
    ThingTag,
    UsageDaily,
)


def get_thing(session: Session, account_id: str, thing_id: str, *,
              for_update: bool = False) -> Thing | None:
    statement = select(Thing).where(Thing.account_id == account_id, Thing.id == thing_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def tags_of(session: Session, account_id: str, thing_ids: Sequence[str]) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {thing_id: [] for thing_id in thing_ids}
    if not thing_ids:
        return tags
    rows = session.execute(
        select(ThingTag.thing_id, ThingTag.tag)
        .where(ThingTag.account_id == account_id, ThingTag.thing_id.in_(thing_ids))
        .order_by(ThingTag.thing_id, ThingTag.tag)
    )
    for thing_id, tag in rows:
        tags[thing_id].append(tag)
    return tags


def things_query(account_id: str, *, state: str | None = None,
                 things_group_id: str | None = None, tags: Sequence[str] = (),
                 iccid: str | None = None, imsi: str | None = None, imei: str | None = None,
                 ip_address: str | None = None,
                 connection_status: str | None = None) -> Select[tuple[Thing]]:
    statement = select(Thing).where(Thing.account_id == account_id)
    for column, value in ((Thing.state, state), (Thing.things_group_id, things_group_id),
                          (Thing.iccid, iccid), (Thing.imsi, imsi), (Thing.imei, imei),
                          (Thing.ip_address, ip_address),
                          (Thing.connection_status, connection_status)):
        if value is not None:
            statement = statement.where(column == value)
    for tag in dict.fromkeys(tags):
        statement = statement.where(exists().where(
            ThingTag.thing_id == Thing.id, ThingTag.account_id == account_id, ThingTag.tag == tag))
    return statement


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
