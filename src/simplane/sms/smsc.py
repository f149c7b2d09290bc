"""The SMS centre link and the built-in store-and-forward SMSC.

`SmscLink` is the interface an SMSC implementation offers the platform; the built-in one
(the default, for development and tests) delivers an MT message as soon as its Thing has an
open data session, else at its next attach, and lets it expire after its validity. The worker
keeps all state in the database, so queued messages survive a restart, and claims rows with
`SKIP LOCKED` on PostgreSQL so several server processes share the work.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.db import Database, claim
from ..core.workers import PollingWorker
from ..models import SmsMessage, Thing, utcnow
from . import service

log = logging.getLogger("simplane.sms")
BATCH = 200


class SmscLink(Protocol):
    def deliver(self, session: Session, message: SmsMessage, thing: Thing) -> str:
        """'DELIVERED', 'DEFERRED' (try again at the next attach) or 'FAILED:<reason>'."""
        ...


class BuiltinSmsc:
    def deliver(self, session: Session, message: SmsMessage, thing: Thing) -> str:
        if thing.state != "ACTIVE" or not thing.service_sms:
            return "FAILED:sms_not_allowed"
        if thing.connection_status != "ATTACHED":
            return "DEFERRED"
        return "DELIVERED"


class SmscWorker(PollingWorker):
    thread_name = "smsc-worker"

    def __init__(self, database: Database, link: SmscLink | None = None,
                 interval: float = 0.2) -> None:
        super().__init__(interval=interval)
        self.database = database
        self.link = link or BuiltinSmsc()

    def run_once(self) -> bool:
        """One pass: expire what is overdue, deliver what can be; True when it did work."""
        # Polling reads first: on SQLite a claim takes the database's one write lock, which an
        # idle poll five times a second must not compete for.
        with self.database.transaction(read_only=True) as session:
            queued = session.scalar(select(SmsMessage.id).where(
                SmsMessage.direction == "MT", SmsMessage.status == "QUEUED").limit(1))
        if queued is None:
            return False
        return self._expire() | self._deliver()

    def _expire(self) -> bool:
        now = utcnow()
        with self.database.transaction() as session:
            overdue = list(session.scalars(claim(session, select(SmsMessage).where(
                SmsMessage.direction == "MT", SmsMessage.status == "QUEUED",
                SmsMessage.expires_at < now).order_by(SmsMessage.id).limit(BATCH))))
            for message in overdue:
                service.mark_expired(session, message, now)
        return bool(overdue)

    def _deliver(self) -> bool:
        now = utcnow()
        with self.database.transaction() as session:
            rows = list(session.execute(claim(session, select(SmsMessage, Thing)
                .join(Thing, Thing.id == SmsMessage.thing_id)
                .where(SmsMessage.direction == "MT", SmsMessage.status == "QUEUED",
                       SmsMessage.expires_at >= now,
                       (Thing.connection_status == "ATTACHED") | (Thing.state != "ACTIVE")
                       | Thing.service_sms.is_(False))
                .order_by(SmsMessage.id).limit(BATCH))))
            delivered = 0
            for message, thing in rows:
                outcome = self.link.deliver(session, message, thing)
                if outcome == "DELIVERED":
                    service.mark_sent(session, message, now)
                    service.mark_delivered(session, message, now)
                    delivered += 1
                elif outcome.startswith("FAILED:"):
                    service.mark_failed(session, message, now, outcome.split(":", 1)[1])
        return bool(rows)
