"""Things (SIMs): the state machine, tags, services, group moves, and shipping inventory."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from ..core.auth import Principal
from ..core.errors import AppError, FieldError, bad_field, not_found, precondition, unknown_reference, validation_error
from ..core.ids import new_id
from ..core.paging import Page
from ..core.reads import ReadTransaction
from ..events import service as events
from ..radius.disconnect import request_disconnect
from ..models import Thing, ThingsGroup, ThingStateChange, ThingTag, utcnow
from . import identifiers, repository
from .schemas import TAG_PATTERN, Connection, Services, ThingOut, ThingPatch

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "PROVISIONED": frozenset({"ACTIVE", "RETIRED"}),
    "ACTIVE": frozenset({"SUSPENDED", "RETIRED"}),
    "SUSPENDED": frozenset({"ACTIVE", "RETIRED"}),
    "RETIRED": frozenset(),
}


@dataclass(frozen=True)
class Actor:
    user_id: str | None
    client_id: str | None
    source: str = "api"

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.user_id, principal.client_id)


OPERATOR = Actor(None, None, "operator")


def view(thing: Thing, tags: list[str]) -> ThingOut:
    return ThingOut(
        id=thing.id, iccid=thing.iccid, imsi=thing.imsi, name=thing.name, state=thing.state,  # type: ignore[arg-type]
        things_group_id=thing.things_group_id, tags=sorted(tags),
        services=Services(data=thing.service_data, sms=thing.service_sms), imei=thing.imei,
        imei_lock=thing.imei_lock, ip_address=thing.ip_address, ip_locked=thing.ip_locked,
        connection=Connection(status=thing.connection_status, since=thing.connection_since,  # type: ignore[arg-type]
                              rat=thing.connection_rat, country=thing.connection_country,
                              operator=thing.connection_operator,
                              session_id=thing.connection_session_id),
        created_at=thing.created_at, updated_at=thing.updated_at,
        activated_at=thing.activated_at,
    )


def views(session: Session, account_id: str, things: Sequence[Thing]) -> list[ThingOut]:
    tags = repository.tags_of(session, account_id, [t.id for t in things])
    return [view(t, tags[t.id]) for t in things]


def thing_document(row: Sequence[Any], tags: list[str]) -> dict[str, Any]:
    """A row of `repository.THING_COLUMNS` (and whatever follows them) as the data of its
    representation, field for field what `view` builds from an ORM object."""
    (thing_id, iccid, imsi, name, state, things_group_id, service_data, service_sms, imei,
     imei_lock, ip_address, ip_locked, connection_status, connection_since, connection_rat,
     connection_country, connection_operator, connection_session_id, created_at, updated_at,
     activated_at, *_) = row
    return {
        "id": thing_id, "iccid": iccid, "imsi": imsi, "name": name, "state": state,
        "things_group_id": things_group_id, "tags": sorted(tags),
        "services": {"data": service_data, "sms": service_sms},
        "imei": imei, "imei_lock": imei_lock, "ip_address": ip_address, "ip_locked": ip_locked,
        "connection": {"status": connection_status, "since": connection_since,
                       "rat": connection_rat, "country": connection_country,
                       "operator": connection_operator, "session_id": connection_session_id},
        "created_at": created_at, "updated_at": updated_at, "activated_at": activated_at,
    }


# The reads below answer the JSON of ThingOut / ThingList serialised straight from the rows'
# data, without building the models: the values come from typed columns, so validating them
# would only copy them (for a page of 100 Things, as much CPU as the rest of the read). The
# bytes are the models' own serialisation, which the ETags compared by PATCH's If-Match rely
# on: the same field order, and orjson writes the values a Thing has (text, booleans, None,
# UTC datetimes) as pydantic does, in ~50 us for a page where pydantic_core's to_json took
# ~185 us. Tests hold the two equal, a property test over any text and time among them.


def document_json(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_UTC_Z)


async def read_thing_json(read: ReadTransaction, account_id: str, thing_id: str) -> bytes:
    """One Thing's representation as JSON, read on the event loop (`core.reads`)."""
    row = await repository.thing_row(read, account_id, thing_id)
    if row is None:
        raise not_found("thing", thing_id)
    return document_json(thing_document(row, repository.tags_of_row(row)))


def list_json(page: Page[Sequence[Any]]) -> bytes:
    """A page of rows of `repository.thing_rows` as the JSON of a ThingList."""
    return document_json({"items": [thing_document(row, repository.tags_of_row(row))
                                    for row in page.items],
                          "next_cursor": page.next_cursor})


def require_thing(session: Session, account_id: str, thing_id: str, *,
                  for_update: bool = False) -> Thing:
    thing = repository.get_thing(session, account_id, thing_id, for_update=for_update)
    if thing is None:
        raise not_found("thing", thing_id)
    return thing


def thing_view(session: Session, account_id: str, thing: Thing) -> ThingOut:
    return views(session, account_id, [thing])[0]


def validate_filters(*, iccid: str | None, imsi: str | None, imei: str | None,
                     ip_address: str | None, tags: Sequence[str] = ()) -> None:
    errors = []
    for tag in tags:
        if not re.fullmatch(TAG_PATTERN, tag):
            errors.append(FieldError("tag", f"{tag!r} is not a tag (1-64 of A-Z a-z 0-9 _ . : -)"))
    if iccid is not None and (not iccid.isdigit() or not 19 <= len(iccid) <= 20):
        errors.append(FieldError("iccid", f"{iccid!r} is not an ICCID (19-20 digits)"))
    if imsi is not None and identifiers.imsi_problem(imsi):
        errors.append(FieldError("imsi", f"{imsi!r} is not an IMSI (15 digits)"))
    if imei is not None and (not imei.isdigit() or len(imei) != 15):
        errors.append(FieldError("imei", f"{imei!r} is not an IMEI (15 digits)"))
    if ip_address is not None:
        try:
            ipaddress.IPv4Address(ip_address)
        except ValueError:
            errors.append(FieldError("ip_address", f"{ip_address!r} is not an IPv4 address"))
    if errors:
        raise validation_error("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


def transition_error(from_state: str, to_state: str) -> AppError:
    """What a Thing in `from_state` answers when asked to become `to_state` and the state
    table does not allow it (bulk actions record the same code and message per Thing)."""
    return precondition("invalid_state_transition",
                        f"a {from_state} Thing cannot become {to_state}",
                        "Invalid state transition")


def change_state(session: Session, thing: Thing, to_state: str, actor: Actor, *,
                 now: datetime | None = None) -> bool:
    """Apply one transition of the state table; False when the Thing is already there."""
    if thing.state == to_state:
        return False
    if to_state not in ALLOWED_TRANSITIONS[thing.state]:
        raise transition_error(thing.state, to_state)
    now = now or utcnow()
    from_state = thing.state
    thing.state = to_state
    thing.updated_at = now
    if to_state == "ACTIVE" and thing.activated_at is None:
        thing.activated_at = now
    session.add(ThingStateChange(
        id=new_id("state_change"), account_id=thing.account_id, thing_id=thing.id,
        from_state=from_state, to_state=to_state, changed_at=now,
        actor_user_id=actor.user_id, actor_client_id=actor.client_id, source=actor.source))
    events.emit(session, thing.account_id, "thing.state_changed", thing_id=thing.id,
                data={"from": from_state, "to": to_state, "actor_user_id": actor.user_id},
                occurred_at=now)
    if to_state == "RETIRED":
        _release_on_retire(session, thing, now)
    if to_state in ("SUSPENDED", "RETIRED"):
        request_disconnect(session, thing.id, to_state.lower())
    return True


def _release_on_retire(session: Session, thing: Thing, now: datetime) -> None:
    """A retired SIM gives back its locked IP (and the NAT rules to it) and any lease."""
    from ..networks import leases

    leases.unlock_ip(session, thing, reason="retired", release=True, occurred_at=now)
    leases.release_dynamic(session, thing, leases.network_of_thing(session, thing))


def _move_to_group(session: Session, thing: Thing, group_id: str) -> None:
    if group_id == thing.things_group_id:
        return
    target = repository.get_group(session, thing.account_id, group_id)
    if target is None:
        raise unknown_reference("things_group_id", group_id)
    current = repository.get_group(session, thing.account_id, thing.things_group_id)
    if current is not None and current.network_id != target.network_id:
        if thing.ip_locked:
            raise precondition("ip_locked", f"Thing {thing.id} holds locked IP "
                               f"{thing.ip_address}; unlock it before moving to another Network")
        from ..networks import leases

        leases.release_dynamic(session, thing, current.network_id)
        request_disconnect(session, thing.id, "moved_network")
    thing.things_group_id = target.id


def set_tags(session: Session, thing: Thing, tags: Iterable[str]) -> None:
    session.execute(delete(ThingTag).where(ThingTag.account_id == thing.account_id,
                                           ThingTag.thing_id == thing.id))
    unique = sorted(set(tags))
    if unique:
        session.execute(insert(ThingTag), [
            {"thing_id": thing.id, "tag": tag, "account_id": thing.account_id} for tag in unique])


def patch_thing(session: Session, thing: Thing, patch: ThingPatch, actor: Actor) -> None:
    """Validate everything first, then change: a refused PATCH changes nothing."""
    now = utcnow()  # one instant for the whole change: updated_at, activated_at, history, events
    if thing.state == "RETIRED":
        # Terminal: asking for RETIRED again is a no-op like any same-state request.
        if patch.state is not None and patch.state != "RETIRED":
            change_state(session, thing, patch.state, actor)  # raises, naming both states
        frozen = sorted(patch.model_fields_set - {"name", "tags", "state"})
        if frozen:
            raise precondition("invalid_state_transition",
                               f"Thing {thing.id} is RETIRED; only name and tags can change, "
                               f"not {', '.join(frozen)}", "Invalid state transition")
    if patch.things_group_id is not None:
        _move_to_group(session, thing, patch.things_group_id)
    if patch.state is not None:
        change_state(session, thing, patch.state, actor, now=now)
    if patch.name is not None:
        thing.name = patch.name
    if patch.services is not None:
        if patch.services.data is not None:
            if thing.service_data and not patch.services.data:
                request_disconnect(session, thing.id, "data_disabled")
            thing.service_data = patch.services.data
        if patch.services.sms is not None:
            thing.service_sms = patch.services.sms
    if patch.imei_lock is not None:
        thing.imei_lock = patch.imei_lock
    tags_changed = patch.tags is not None and set(patch.tags) != set(repository.tags_of(
        session, thing.account_id, [thing.id])[thing.id])
    if tags_changed:
        set_tags(session, thing, patch.tags)
    if patch.ip_lock is not None:
        _apply_ip_lock(session, thing, patch)
    if session.is_modified(thing) or tags_changed:
        thing.updated_at = now
    session.flush()


def _apply_ip_lock(session: Session, thing: Thing, patch: ThingPatch) -> None:
    from ..networks import leases

    request = patch.ip_lock
    if request.locked:
        if thing.state == "RETIRED":  # e.g. retired earlier in this same PATCH
            raise precondition("invalid_state_transition",
                               f"Thing {thing.id} is RETIRED and cannot lock an IP",
                               "Invalid state transition")
        if thing.ip_locked and request.ip_address in (None, thing.ip_address):
            return  # already locked there: same-state request, no change and no event
        leases.lock_ip(session, thing, request.ip_address)
    else:
        if request.ip_address is not None:
            raise bad_field("ip_lock.ip_address", "is only allowed with locked: true")
        leases.unlock_ip(session, thing)


def lookup(session: Session, account_id: str, *, iccid: str | None, imsi: str | None,
           imei: str | None, ip_address: str | None) -> Thing:
    given = {k: v for k, v in (("iccid", iccid), ("imsi", imsi), ("imei", imei),
                               ("ip_address", ip_address)) if v is not None}
    if len(given) != 1:
        raise validation_error(
            "give exactly one of iccid, imsi, imei or ip_address",
            [FieldError(k, "exactly one lookup key is allowed") for k in given] or
            [FieldError("iccid", "one of iccid, imsi, imei, ip_address is required")])
    validate_filters(iccid=iccid, imsi=imsi, imei=imei, ip_address=ip_address)
    (key, value), = given.items()
    thing = session.scalar(
        repository.things_query(account_id, **{key: value}).order_by(Thing.id).limit(1))
    if thing is None:
        raise not_found("thing with " + key, value)
    return thing


# --- shipping SIM inventory (operator side) -------------------------------------------------

@dataclass(frozen=True)
class SimRow:
    line: int
    iccid: str
    imsi: str


class InventoryRejected(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} invalid row(s): " + "; ".join(problems[:20]))
        self.problems = problems


def check_inventory(session: Session, rows: Sequence[SimRow]) -> list[str]:
    """Every problem with the rows, each naming its line; empty when all can be shipped."""
    problems: list[str] = []
    seen_iccid: dict[str, int] = {}
    seen_imsi: dict[str, int] = {}
    for row in rows:
        for problem in (identifiers.iccid_problem(row.iccid), identifiers.imsi_problem(row.imsi)):
            if problem:
                problems.append(f"line {row.line}: {problem}")
        if row.iccid in seen_iccid:
            problems.append(f"line {row.line}: ICCID {row.iccid} repeats line {seen_iccid[row.iccid]}")
        if row.imsi in seen_imsi:
            problems.append(f"line {row.line}: IMSI {row.imsi} repeats line {seen_imsi[row.imsi]}")
        seen_iccid.setdefault(row.iccid, row.line)
        seen_imsi.setdefault(row.imsi, row.line)
    taken_iccids = repository.existing_identifiers(session, Thing.iccid, list(seen_iccid))
    taken_imsis = repository.existing_identifiers(session, Thing.imsi, list(seen_imsi))
    for row in rows:
        if row.iccid in taken_iccids:
            problems.append(f"line {row.line}: ICCID {row.iccid} is already shipped")
        if row.imsi in taken_imsis:
            problems.append(f"line {row.line}: IMSI {row.imsi} is already shipped")
    return problems


def ship_sims(session: Session, account_id: str, rows: Sequence[SimRow]) -> int:
    """All rows PROVISIONED into the default group, or none (InventoryRejected)."""
    problems = check_inventory(session, rows)
    if problems:
        raise InventoryRejected(problems)
    group = repository.default_group(session, account_id)
    now = utcnow()
    for start in range(0, len(rows), 5000):
        chunk = rows[start:start + 5000]
        ids = [new_id("thing") for _ in chunk]
        session.execute(insert(Thing), [
            {"id": thing_id, "account_id": account_id, "iccid": row.iccid, "imsi": row.imsi,
             "name": "", "state": "PROVISIONED", "things_group_id": group.id,
             "service_data": True, "service_sms": True, "imei_lock": False, "ip_locked": False,
             "connection_status": "NEVER", "created_at": now, "updated_at": now}
            for thing_id, row in zip(ids, chunk, strict=True)])
        session.execute(insert(ThingStateChange), [
            {"id": new_id("state_change"), "account_id": account_id, "thing_id": thing_id,
             "from_state": None, "to_state": "PROVISIONED", "changed_at": now,
             "source": "operator"}
            for thing_id in ids])
    session.flush()
    return len(rows)


def group_exists(session: Session, account_id: str, group_id: str) -> bool:
    return session.scalar(select(ThingsGroup.id).where(
        ThingsGroup.account_id == account_id, ThingsGroup.id == group_id)) is not None




def disconnect(session: Session, thing: Thing) -> list[str]:
    from ..models import DataSession

    ids = list(session.scalars(select(DataSession.id).where(
        DataSession.account_id == thing.account_id, DataSession.thing_id == thing.id,
        DataSession.status == "OPEN")))
    if not ids:
        raise precondition("not_attached", f"Thing {thing.id} has no open data session")
    request_disconnect(session, thing.id, "api")
    return ids
