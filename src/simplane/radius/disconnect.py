"""RFC 5176 Disconnect-Request: ending a Thing's data session from the platform side.

Services mark the open session `disconnect_status = PENDING` inside their transaction (an
outbox); this worker claims pending sessions (`SKIP LOCKED` on PostgreSQL, so several server
processes share the work), sends the request to the session's NAS with retries, and records the
outcome (ACKED, NAKED or TIMEOUT). A restart loses nothing: pending rows wait in the database.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from pyrad import packet as rp
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.config import Settings
from ..core.db import Database, claim
from ..core.workers import PollingWorker
from ..models import DataSession, utcnow
from .attributes import load_dictionary
from .clients import parse_clients, secret_for

log = logging.getLogger("simplane.radius.disconnect")
STALE_CLAIM = timedelta(seconds=60)
OUTCOMES = Counter("simplane_radius_disconnects_total", "Disconnect-Request outcomes", ["outcome"])


def request_disconnect(session: Session, thing_id: str, reason: str) -> int:
    """Mark the Thing's open sessions for disconnection; sent after the commit."""
    records = list(session.scalars(select(DataSession).where(
        DataSession.thing_id == thing_id, DataSession.status == "OPEN")))
    for record in records:
        record.disconnect_status = "PENDING"
        record.disconnect_reason = reason
        record.disconnect_attempts = 0
    session.flush()
    return len(records)


def send_disconnect(settings: Settings, record: DataSession, dictionary=None) -> str:  # type: ignore[no-untyped-def]
    secret = secret_for(parse_clients(settings.radius_clients), record.nas_address)
    if secret is None:
        return "NO_CLIENT"
    dictionary = dictionary or load_dictionary()
    request = rp.CoAPacket(code=rp.DisconnectRequest, secret=secret, dict=dictionary)
    request["Acct-Session-Id"] = record.acct_session_id
    request["User-Name"] = record.imsi
    if record.framed_ip:
        request["Framed-IP-Address"] = record.framed_ip
    request["Event-Timestamp"] = int(datetime.now(UTC).timestamp())
    request.add_message_authenticator()
    raw = request.RequestPacket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(settings.radius_disconnect_timeout)
        for _ in range(settings.radius_disconnect_retries):
            sock.sendto(raw, (record.nas_address, settings.radius_disconnect_port))
            try:
                data, _ = sock.recvfrom(4096)
            except TimeoutError:
                continue
            reply = rp.CoAPacket(packet=data, secret=secret, dict=dictionary)
            if reply.id != request.id or not request.VerifyReply(reply, data):
                continue
            return "ACKED" if reply.code == rp.DisconnectACK else "NAKED"
    return "TIMEOUT"


class DisconnectWorker(PollingWorker):
    thread_name = "disconnect-worker"

    def __init__(self, settings: Settings, database: Database, interval: float = 0.2) -> None:
        super().__init__(interval=interval)
        self.settings = settings
        self.database = database
        self.dictionary = load_dictionary()

    def run_once(self) -> bool:
        # Claim in one short transaction and send outside it: a NAS that does not answer must
        # not hold the database's write lock for the seconds its retries take.
        now = utcnow()
        due = ((DataSession.disconnect_status == "PENDING")
               | ((DataSession.disconnect_status == "SENDING")
                  & (DataSession.disconnect_at < now - STALE_CLAIM)))
        # Polling reads first: on SQLite a claim takes the database's one write lock, which an
        # idle poll five times a second must not compete for.
        with self.database.transaction(read_only=True) as session:
            if session.scalar(select(DataSession.id).where(due).limit(1)) is None:
                return False
        with self.database.transaction() as session:
            record = session.scalar(claim(session, select(DataSession).where(due)
                                          .order_by(DataSession.id).limit(1)))
            if record is None:
                return False
            record.disconnect_status = "SENDING"
            record.disconnect_at = now
            session.flush()
            session.expunge(record)
        outcome = send_disconnect(self.settings, record, self.dictionary)
        with self.database.transaction() as session:
            stored = session.get(DataSession, record.id, with_for_update=True)
            if stored is not None and stored.disconnect_status == "SENDING":
                stored.disconnect_status = outcome
                stored.disconnect_attempts += 1
                stored.disconnect_at = utcnow()
        OUTCOMES.labels(outcome.lower()).inc()
        log.info("disconnect", extra={"session_id": record.id, "nas": record.nas_address,
                                      "outcome": outcome})
        return True
