"""Closes ended billing cycles once their grace period for late usage is over."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from ..core.db import Database, advisory_lock
from ..models import utcnow
from .service import close_due_cycles

log = logging.getLogger("simplane.billing")
# Held by whoever closes cycles or loads usage in bulk: one at a time across processes.
CLOSE_LOCK = "simplane:billing-close"


def close_once(database: Database, grace_days: int) -> list[tuple[str, str]]:
    with database.transaction() as session:
        advisory_lock(session, CLOSE_LOCK)  # one closer across processes
        closed = close_due_cycles(session, utcnow(), timedelta(days=grace_days))
    for account_id, period in closed:
        log.info("billing cycle closed", extra={"account_id": account_id, "period": period})
    return closed


class ClosingWorker:
    def __init__(self, database: Database, grace_days: int, interval: float = 600.0) -> None:
        self.database = database
        self.grace_days = grace_days
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="billing-closer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                close_once(self.database, self.grace_days)
            except Exception:  # noqa: BLE001 - try again at the next interval
                log.exception("closing billing cycles failed")
            self._stop.wait(self.interval)
