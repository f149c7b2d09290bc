"""The account's event stream: every state change the platform makes, kept for 90 days."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..core.ids import new_id
from ..models import Event, utcnow

EVENT_TYPES = (
    "thing.state_changed", "thing.imei_changed", "thing.attached", "thing.detached",
    "thing.attach_rejected", "thing.ip_locked", "thing.ip_unlocked", "sms.status_changed",
    "sms.received", "bulk_action.finished", "vpn_tunnel.status_changed", "ip_pool.exhausted",
)
RETENTION_DAYS = 90


def emit(session: Session, account_id: str, event_type: str, *, thing_id: str | None = None,
         data: dict[str, Any] | None = None, occurred_at: datetime | None = None) -> Event:
    assert event_type in EVENT_TYPES, event_type
    event = Event(id=new_id("event"), account_id=account_id, type=event_type, thing_id=thing_id,
                  data=data or {}, occurred_at=occurred_at or utcnow())
    session.add(event)
    from ..webhooks.service import enqueue

    enqueue(session, event)
    return event


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
