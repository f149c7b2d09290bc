from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ..models import FirewallRule, IpProfile, ThingsGroup


def get_profile(session: Session, account_id: str, profile_id: str, *,
                for_update: bool = False) -> IpProfile | None:
    statement = select(IpProfile).where(IpProfile.account_id == account_id,
                                        IpProfile.id == profile_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def profiles_query(account_id: str) -> Select[tuple[IpProfile]]:
    return select(IpProfile).where(IpProfile.account_id == account_id)


def rules_of(session: Session, account_id: str,
             profile_ids: Sequence[str]) -> Sequence[FirewallRule]:
    if not profile_ids:
        return []
    return session.scalars(
        select(FirewallRule)
        .where(FirewallRule.account_id == account_id,
               FirewallRule.ip_profile_id.in_(profile_ids))
        .order_by(FirewallRule.ip_profile_id, FirewallRule.chain, FirewallRule.position)).all()


def group_counts(session: Session, account_id: str, profile_ids: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(profile_ids, 0)
    if profile_ids:
        counts.update(dict(session.execute(
            select(ThingsGroup.ip_profile_id, func.count())
            .where(ThingsGroup.account_id == account_id,
                   ThingsGroup.ip_profile_id.in_(profile_ids))
            .group_by(ThingsGroup.ip_profile_id)).all()))
    return counts


def get_rule(session: Session, account_id: str, profile_id: str,
             rule_id: str) -> FirewallRule | None:
    return session.scalar(select(FirewallRule).where(
        FirewallRule.account_id == account_id, FirewallRule.ip_profile_id == profile_id,
        FirewallRule.id == rule_id))


def chain_size(session: Session, profile_id: str, chain: str) -> int:
    return session.scalar(select(func.count()).select_from(FirewallRule).where(
        FirewallRule.ip_profile_id == profile_id, FirewallRule.chain == chain)) or 0


def shift(session: Session, profile_id: str, chain: str, *, low: int, high: int | None,
          delta: int) -> None:
    """Move every rule of the chain whose position is in [low, high] by `delta`."""
    condition = [FirewallRule.ip_profile_id == profile_id, FirewallRule.chain == chain,
                 FirewallRule.position >= low]
    if high is not None:
        condition.append(FirewallRule.position <= high)
    session.execute(update(FirewallRule).where(*condition)
                    .values(position=FirewallRule.position + delta)
                    .execution_options(synchronize_session="fetch"))


def rules_page(session: Session, account_id: str, profile_id: str, *, chain: str | None,
               after: tuple[str, int] | None, limit: int) -> Sequence[FirewallRule]:
    statement = select(FirewallRule).where(FirewallRule.account_id == account_id,
                                           FirewallRule.ip_profile_id == profile_id)
    if chain is not None:
        statement = statement.where(FirewallRule.chain == chain)
    if after is not None:
        after_chain, after_position = after
        statement = statement.where(or_(
            FirewallRule.chain > after_chain,
            and_(FirewallRule.chain == after_chain, FirewallRule.position > after_position)))
    return session.scalars(statement.order_by(FirewallRule.chain, FirewallRule.position)
                           .limit(limit)).all()


def delete_rules(session: Session, profile_id: str) -> None:
    session.execute(delete(FirewallRule).where(FirewallRule.ip_profile_id == profile_id)
                    .execution_options(synchronize_session=False))


def chain_rows(session: Session, account_id: str, profile_id: str,
               chain: str) -> Sequence[Row[Any]]:
    """The profile's default action for `chain` with that chain's rules, in one query.

    No rows: no such profile. One row with a null rule id: a profile with an empty chain.
    """
    default = (IpProfile.inbound_default_action if chain == "INBOUND"
               else IpProfile.outbound_default_action)
    return session.execute(
        select(default.label("default_action"), FirewallRule.id, FirewallRule.position,
               FirewallRule.action, FirewallRule.protocol, FirewallRule.remote_cidr,
               FirewallRule.port_from, FirewallRule.port_to)
        .select_from(IpProfile)
        .outerjoin(FirewallRule, and_(FirewallRule.ip_profile_id == IpProfile.id,
                                      FirewallRule.chain == chain))
        .where(IpProfile.account_id == account_id, IpProfile.id == profile_id)
        .order_by(FirewallRule.position)).all()
