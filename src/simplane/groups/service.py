"""Things Groups: which Network and IP Profile a set of Things uses."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..core.errors import not_found, precondition, unknown_reference
from ..core.ids import new_id
from ..models import DataSession, IpLease, Thing, ThingsGroup, utcnow
from . import repository
from .schemas import GroupCreate, GroupOut, GroupPatch


def views(session: Session, account_id: str, groups: list[ThingsGroup]) -> list[GroupOut]:
    counts = repository.thing_counts(session, account_id, [g.id for g in groups])
    return [GroupOut(id=g.id, name=g.name, description=g.description, network_id=g.network_id,
                     ip_profile_id=g.ip_profile_id, is_default=g.is_default,
                     thing_count=counts[g.id], created_at=g.created_at, updated_at=g.updated_at)
            for g in groups]


def view(session: Session, account_id: str, group: ThingsGroup) -> GroupOut:
    return views(session, account_id, [group])[0]


def require_group(session: Session, account_id: str, group_id: str, *,
                  for_update: bool = False) -> ThingsGroup:
    group = repository.get_group(session, account_id, group_id, for_update=for_update)
    if group is None:
        raise not_found("things group", group_id)
    return group


def _check_references(session: Session, account_id: str, network_id: str | None,
                      ip_profile_id: str | None) -> None:
    if network_id is not None and not repository.network_exists(session, account_id, network_id):
        raise unknown_reference("network_id", network_id)
    if ip_profile_id is not None and not repository.ip_profile_exists(session, account_id,
                                                                      ip_profile_id):
        raise unknown_reference("ip_profile_id", ip_profile_id)


def create_group(session: Session, account_id: str, body: GroupCreate) -> ThingsGroup:
    _check_references(session, account_id, body.network_id, body.ip_profile_id)
    group = ThingsGroup(
        id=new_id("things_group"), account_id=account_id, name=body.name,
        description=body.description,
        network_id=body.network_id or repository.default_network_id(session, account_id),
        ip_profile_id=body.ip_profile_id or repository.default_ip_profile_id(session, account_id),
        is_default=False)
    session.add(group)
    session.flush()
    return group


def update_group(session: Session, account_id: str, group: ThingsGroup, body: GroupPatch) -> None:
    _check_references(session, account_id, body.network_id, body.ip_profile_id)
    if body.network_id is not None and body.network_id != group.network_id:
        locked = repository.locked_things_in(session, account_id, group.id)
        if locked:
            raise precondition("ip_locked", f"Things of group {group.id} hold locked IPs "
                               f"({', '.join(locked)}); unlock them before changing Network")
        # Dynamic leases belong to the old Network: its Things get new addresses on attach.
        members = select(Thing.id).where(Thing.account_id == account_id,
                                         Thing.things_group_id == group.id)
        session.execute(delete(IpLease).where(IpLease.network_id == group.network_id,
                                              IpLease.thing_id.in_(members),
                                              IpLease.kind == "DYNAMIC"))
        session.execute(update(Thing).where(
            Thing.account_id == account_id, Thing.things_group_id == group.id,
            Thing.ip_locked.is_(False), Thing.ip_address.is_not(None),
        ).values(ip_address=None, updated_at=utcnow()))
        session.execute(update(DataSession).where(
            DataSession.account_id == account_id, DataSession.thing_id.in_(members),
            DataSession.status == "OPEN",
        ).values(disconnect_status="PENDING", disconnect_reason="moved_network",
                 disconnect_attempts=0))
        group.network_id = body.network_id
    for field in ("name", "description", "ip_profile_id"):
        value = getattr(body, field)
        if value is not None:
            setattr(group, field, value)
    session.flush()


def delete_group(session: Session, account_id: str, group: ThingsGroup) -> None:
    if group.is_default:
        raise precondition("default_resource",
                           f"{group.id} is the account's default Things Group")
    count = repository.thing_counts(session, account_id, [group.id])[group.id]
    if count:
        raise precondition("in_use", f"Things Group {group.id} still has {count} Thing(s)")
    session.delete(group)
    session.flush()
