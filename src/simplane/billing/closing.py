"""Closes ended billing cycles once their grace period for late usage is over."""

from __future__ import annotations

import logging
from datetime import timedelta

from ..core.db import Database, advisory_lock
from ..core.workers import PollingWorker
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


class ClosingWorker(PollingWorker):
    thread_name = "billing-closer"

    def __init__(self, database: Database, grace_days: int, interval: float = 600.0) -> None:
        super().__init__(interval=interval)
        self.database = database
        self.grace_days = grace_days

    def run_once(self) -> bool:
        close_once(self.database, self.grace_days)
        return False  # one pass per interval: cycles end once a month
