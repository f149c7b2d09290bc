"""Delivering the webhook outbox: at-least-once, exponential backoff for 24 hours.

A few threads per `serve` process each claim one due delivery at a time (`SKIP LOCKED` on
PostgreSQL), send it outside any transaction, and record the attempt. A slow or dead receiver
only ever occupies these threads; the API never waits for it. A disabled or deleted webhook is
not claimed any more.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import httpx
from prometheus_client import Counter
from sqlalchemy import select

from ..core import crypto
from ..core.db import Database, claim
from ..core.workers import PollingWorker
from ..models import Webhook, WebhookDelivery, utcnow
from .service import sign

log = logging.getLogger("simplane.webhooks")
OUTCOMES = Counter("simplane_webhook_deliveries_total", "Webhook delivery attempts", ["outcome"])
STALE_SENDING = timedelta(minutes=5)


def backoff(attempts: int, base_seconds: float) -> timedelta:
    return timedelta(seconds=min(base_seconds * 2 ** (attempts - 1), 3600))


class DeliveryWorker(PollingWorker):
    thread_name = "webhooks"
    # Idle, the threads already look once per interval between them (`_poll`); backing off
    # too would leave a burst of deliveries to threads asleep for up to a second, and a retry
    # could miss its turn before the delivery's maximum age.
    idle_backoff = False

    def __init__(self, database: Database, secret_key: str, *, threads: int = 4,
                 timeout: float = 5.0, base_seconds: float = 10.0,
                 max_age: timedelta = timedelta(hours=24), interval: float = 0.2) -> None:
        super().__init__(interval=interval, threads=threads, join_timeout=timeout + 5)
        self.database = database
        self.secret_key = secret_key
        self.timeout = timeout
        self.base_seconds = base_seconds
        self.max_age = max_age
        # Until when the other threads leave looking for due deliveries to the one that did.
        self._quiet_until = 0.0
        self._turn = threading.Lock()

    def serve(self) -> None:
        # One HTTP connection pool per thread, for the thread's life.
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            self.loop(lambda: self._poll(client))

    def _poll(self, client: httpx.Client) -> bool:
        # The threads take turns to look while nothing is due: one look per interval, not one
        # per thread (each costs a transaction; idle, they were most of a serving process's
        # CPU between requests). Work found lets every thread look again at its next wake.
        with self._turn:
            now = time.monotonic()
            if now < self._quiet_until:
                return False
            self._quiet_until = now + self.interval
        worked = self.run_once(client)
        if worked:
            self._quiet_until = 0.0
        return worked

    def _due(self):  # type: ignore[no-untyped-def]
        now = utcnow()
        return (select(WebhookDelivery, Webhook)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(Webhook.enabled.is_(True),
                       ((WebhookDelivery.status == "PENDING")
                        & (WebhookDelivery.next_attempt_at <= now))
                       | ((WebhookDelivery.status == "SENDING")
                          & (WebhookDelivery.last_attempt_at < now - STALE_SENDING)))
                .order_by(WebhookDelivery.next_attempt_at).limit(1))

    def run_once(self, client: httpx.Client) -> bool:
        with self.database.transaction(read_only=True) as session:
            if session.execute(self._due()).first() is None:
                return False
        with self.database.transaction() as session:
            row = session.execute(claim(session, self._due())).first()
            if row is None:
                return False
            delivery, webhook = row
            delivery.status = "SENDING"
            delivery.attempts += 1
            delivery.last_attempt_at = utcnow()
            url, body = webhook.url, delivery.payload.encode()
            secret = crypto.decrypt(self.secret_key, webhook.secret_encrypted)
            delivery_id, attempt, created = delivery.id, delivery.attempts, delivery.created_at
            event_id = delivery.event_id
        status_code, error = None, None
        try:
            response = client.post(url, content=body, headers={
                "Content-Type": "application/json", "Simplane-Signature": sign(secret, body),
                "Simplane-Event-Id": event_id, "Simplane-Delivery-Attempt": str(attempt),
                "User-Agent": "simplane-webhooks/1"})
            status_code = response.status_code
            ok = 200 <= status_code < 300
            if not ok:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
        now = utcnow()
        with self.database.transaction() as session:
            stored = session.get(WebhookDelivery, delivery_id, with_for_update=True)
            if stored is None:
                return True  # the webhook was deleted meanwhile
            stored.last_status_code = status_code
            stored.last_error = error
            if ok:
                stored.status, stored.delivered_at = "DELIVERED", now
            else:
                next_at = now + backoff(attempt, self.base_seconds)
                if next_at - created > self.max_age:
                    stored.status = "FAILED"
                else:
                    stored.status, stored.next_attempt_at = "PENDING", next_at
        OUTCOMES.labels("delivered" if ok else "failed").inc()
        return True
