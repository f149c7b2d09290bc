from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..models import IpProfile, Network, Thing, ThingsGroup


def get_group(session: Session, account_id: str, group_id: str, *,
              for_update: bool = False) -> ThingsGroup | None:
    statement = select(ThingsGroup).where(ThingsGroup.account_id == account_id,
                                          ThingsGroup.id == group_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def groups_query(account_id: str) -> Select[tuple[ThingsGroup]]:
    return select(ThingsGroup).where(ThingsGroup.account_id == account_id)


def thing_counts(session: Session, account_id: str, group_ids: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(group_ids, 0)
    if group_ids:
        counts.update(dict(session.execute(
            select(Thing.things_group_id, func.count())
            .where(Thing.account_id == account_id, Thing.things_group_id.in_(group_ids))
            .group_by(Thing.things_group_id)).all()))
    return counts


def network_exists(session: Session, account_id: str, network_id: str) -> bool:
    return session.scalar(select(Network.id).where(Network.account_id == account_id,
                                                   Network.id == network_id)) is not None


def ip_profile_exists(session: Session, account_id: str, profile_id: str) -> bool:
    return session.scalar(select(IpProfile.id).where(IpProfile.account_id == account_id,
                                                     IpProfile.id == profile_id)) is not None


def default_network_id(session: Session, account_id: str) -> str:
    return session.scalar(select(Network.id).where(Network.account_id == account_id,
                                                   Network.is_default.is_(True)))  # type: ignore[return-value]


def default_ip_profile_id(session: Session, account_id: str) -> str:
    return session.scalar(select(IpProfile.id).where(IpProfile.account_id == account_id,
                                                     IpProfile.is_default.is_(True)))  # type: ignore[return-value]


def locked_things_in(session: Session, account_id: str, group_id: str) -> list[str]:
    return list(session.scalars(select(Thing.id).where(
        Thing.account_id == account_id, Thing.things_group_id == group_id,
        Thing.ip_locked.is_(True)).limit(5)))
