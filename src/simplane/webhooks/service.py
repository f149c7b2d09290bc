"""Webhooks: subscriptions, the delivery outbox filled as events happen, and signatures.

`Simplane-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; the body's
`id` is the event id, the same on every retry, for de-duplication.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from ..core import crypto
from ..core.errors import not_found
from ..core.ids import new_id
from ..models import Event, Webhook, WebhookDelivery, utcnow
from .schemas import WebhookCreate, WebhookOut, WebhookPatch

if TYPE_CHECKING:
    from ..events.service import BufferedEvent

_SUBSCRIBERS = "webhook_subscribers"


def _types_text(types: list[str]) -> str:
    # "," alone means every type (not ",,", which no event type would ever match).
    return ",".join(["", *sorted(set(types)), ""]) if types else ","


def view(webhook: Webhook) -> WebhookOut:
    return WebhookOut(id=webhook.id, url=webhook.url,
                      event_types=[t for t in webhook.event_types.split(",") if t],
                      enabled=webhook.enabled, created_at=webhook.created_at,
                      updated_at=webhook.updated_at)


def create(session: Session, secret_key: str, account_id: str,
           body: WebhookCreate) -> tuple[Webhook, str]:
    secret = body.secret or "whsec_" + secrets.token_urlsafe(32)
    webhook = Webhook(id=new_id("webhook"), account_id=account_id, url=body.url,
                      event_types=_types_text(list(body.event_types)), enabled=body.enabled,
                      secret_encrypted=crypto.encrypt(secret_key, secret))
    session.add(webhook)
    session.flush()
    forget_subscribers(session)
    return webhook, secret


def update(session: Session, secret_key: str, webhook: Webhook, body: WebhookPatch) -> None:
    if body.url is not None:
        webhook.url = body.url
    if body.event_types is not None:
        webhook.event_types = _types_text(list(body.event_types))
    if body.enabled is not None:
        webhook.enabled = body.enabled
    if body.secret is not None:
        webhook.secret_encrypted = crypto.encrypt(secret_key, body.secret)
    webhook.updated_at = utcnow()
    session.flush()
    forget_subscribers(session)


def require(session: Session, account_id: str, webhook_id: str, *,
            for_update: bool = False) -> Webhook:
    statement = select(Webhook).where(Webhook.account_id == account_id, Webhook.id == webhook_id)
    webhook = session.scalar(statement.with_for_update() if for_update else statement)
    if webhook is None:
        raise not_found("webhook", webhook_id)
    return webhook


def webhooks_query(account_id: str) -> Select[Any]:
    return select(Webhook).where(Webhook.account_id == account_id)


def deliveries_query(account_id: str, webhook_id: str) -> Select[Any]:
    return select(WebhookDelivery).where(WebhookDelivery.account_id == account_id,
                                         WebhookDelivery.webhook_id == webhook_id)


def payload(event: Event | BufferedEvent) -> str:
    return json.dumps({"id": event.id, "type": event.type,
                       "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
                       "account_id": event.account_id, "thing_id": event.thing_id,
                       "data": event.data}, separators=(",", ":"), default=str)


def forget_subscribers(session: Session) -> None:
    session.info.pop(_SUBSCRIBERS, None)


# Built once, over the table's columns (no ORM entities to process): every RADIUS batch that
# raises an event asks.
_webhooks = Webhook.__table__
_ENABLED_WEBHOOKS = select(_webhooks.c.id, _webhooks.c.event_types).where(
    _webhooks.c.account_id == bindparam("account"), _webhooks.c.enabled.is_(True))


def enabled_webhooks_column(account_id):  # type: ignore[no-untyped-def]
    """A column for a query that reads rows carrying `account_id` (PostgreSQL): the account's
    enabled webhooks, as `remember_subscribers` takes them. A RADIUS batch reads them with its
    Things, so the events it raises cost no query of their own for their outbox rows."""
    return func.array(select(_webhooks.c.id + " " + _webhooks.c.event_types).where(
        _webhooks.c.account_id == account_id, _webhooks.c.enabled.is_(True))
        .order_by(_webhooks.c.id).scalar_subquery())


def remember_subscribers(session: Session, account_id: str, webhooks: list[str]) -> None:
    """What `enabled_webhooks_column` read for the account, read in this transaction: the
    session's `subscribers` answers from it. Every row of the account carries the same list;
    the first one read is kept, as `subscribers` keeps its own first answer."""
    cache = session.info.setdefault(_SUBSCRIBERS, {})
    if account_id not in cache:
        cache[account_id] = [tuple(entry.split(" ", 1)) for entry in webhooks]


def subscribers(session: Session, account_id: str, event_type: str) -> list[str]:
    # Read once per account and session, not per event: a bulk action emits thousands of events
    # in one transaction, and a query per event would also flush the session every time.
    cache = session.info.setdefault(_SUBSCRIBERS, {})
    if account_id not in cache:
        cache[account_id] = list(session.execute(_ENABLED_WEBHOOKS, {"account": account_id}))
    return [webhook_id for webhook_id, types in cache[account_id]
            if types == "," or f",{event_type}," in types]


def enqueue(session: Session, event: Event) -> None:
    """One outbox row per subscribed, enabled webhook, in the event's own transaction."""
    session.add_all([WebhookDelivery(**row) for row in delivery_rows(session, event)])


def delivery_rows(session: Session, event: Event | BufferedEvent) -> list[dict]:
    webhook_ids = subscribers(session, event.account_id, event.type)
    if not webhook_ids:
        return []
    body = payload(event)
    now = utcnow()
    return [{"id": new_id("delivery"), "account_id": event.account_id, "webhook_id": webhook_id,
             "event_id": event.id, "event_type": event.type, "payload": body,
             "status": "PENDING", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for webhook_id in webhook_ids]


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, body: bytes, header: str, tolerance_seconds: int = 300) -> bool:
    """What a receiver does: check the HMAC and that the timestamp is recent."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
