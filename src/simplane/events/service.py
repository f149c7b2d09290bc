"""The account's event stream: every state change the platform makes, kept for 90 days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..core.db import Rows, write_rows
from ..core.ids import new_id
from ..models import Event, utcnow

EVENT_TYPES = (
    "thing.state_changed", "thing.imei_changed", "thing.attached", "thing.detached",
    "thing.attach_rejected", "thing.ip_locked", "thing.ip_unlocked", "sms.status_changed",
    "sms.received", "bulk_action.finished", "vpn_tunnel.status_changed", "ip_pool.exhausted",
)
RETENTION_DAYS = 90


def emit(session: Session, account_id: str, event_type: str, *, thing_id: str | None = None,
         data: dict[str, Any] | None = None,
         occurred_at: datetime | None = None) -> Event | BufferedEvent:
    assert event_type in EVENT_TYPES, event_type
    buffer: EventBuffer | None = session.info.get(_BUFFER)
    if buffer is not None:
        return buffer.add(account_id, event_type, thing_id=thing_id, data=data,
                          occurred_at=occurred_at)
    event = Event(id=new_id("event"), account_id=account_id, type=event_type, thing_id=thing_id,
                  data=data or {}, occurred_at=occurred_at or utcnow())
    session.add(event)
    from ..webhooks.service import enqueue

    enqueue(session, event)
    return event


_BUFFER = "simplane.events.buffer"


@dataclass(slots=True)
class BufferedEvent:
    """An event an `EventBuffer` holds until its batch writes it: what `Event` carries, without
    the ORM's instrumentation (which cost more than the row)."""

    id: str
    account_id: str
    type: str
    thing_id: str | None
    data: dict[str, Any]
    occurred_at: datetime


class EventBuffer:
    """The events of a batch (RADIUS decides many requests in one transaction), written by one
    INSERT at its end, with their webhook outbox rows, rather than as ORM objects one by one:
    the unit of work's bookkeeping per object cost more than the rows. While it is open on a
    session, `emit` on that session adds to it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events: list[BufferedEvent] = []

    def __enter__(self) -> EventBuffer:
        self.session.info[_BUFFER] = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.session.info.pop(_BUFFER, None)

    def add(self, account_id: str, event_type: str, *, thing_id: str | None,
            data: dict[str, Any] | None, occurred_at: datetime | None) -> BufferedEvent:
        event = BufferedEvent(new_id("event"), account_id, event_type, thing_id, data or {},
                              occurred_at or utcnow())
        self.events.append(event)
        return event

    def write(self) -> None:
        write_rows(self.session.connection(), self.shares())

    def shares(self) -> list[Rows]:
        """The events and their outbox rows, for `write_rows` (the RADIUS batch writes them
        with its other rows); the buffer is empty afterwards."""
        if not self.events:
            return []
        from ..models import WebhookDelivery
        from ..webhooks.service import delivery_rows

        shares = [Rows(Event.__table__, [
            {"id": e.id, "account_id": e.account_id, "type": e.type, "thing_id": e.thing_id,
             "data": e.data, "occurred_at": e.occurred_at} for e in self.events]),
            Rows(WebhookDelivery.__table__,
                 [row for e in self.events for row in delivery_rows(self.session, e)])]
        self.events.clear()
        return shares


def events_query(account_id: str, *, event_type: str | None, thing_id: str | None,
                 since: datetime | None) -> Select[tuple[Event]]:
    statement = select(Event).where(Event.account_id == account_id)
    if event_type:
        statement = statement.where(Event.type == event_type)
    if thing_id:
        statement = statement.where(Event.thing_id == thing_id)
    if since:
        if since.tzinfo is None:  # RFC 3339 without an offset: read it as UTC
            since = since.replace(tzinfo=UTC)
        statement = statement.where(Event.occurred_at >= since)
    return statement
