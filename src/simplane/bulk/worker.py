"""The bulk-action worker of one `serve` process: claims a job, runs it batch by batch."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import select

from ..core.db import Database
from ..core.workers import PollingWorker
from ..models import BulkAction, utcnow
from .service import STALE_AFTER, claim_job, claimable, release_job, run_batch

log = logging.getLogger("simplane.bulk")
SQLITE_PAUSE = 0.15


class BulkWorker(PollingWorker):
    thread_name = "bulk-worker"

    def __init__(self, database: Database, interval: float = 0.2,
                 stale_after: timedelta = STALE_AFTER, state_batch: int | None = None) -> None:
        super().__init__(interval=interval, join_timeout=30)
        self.database = database
        self.stale_after = stale_after
        self.state_batch = state_batch  # None: the engine's STATE_BATCH_SIZE
        # bulk_actions.owner is 40 characters: a long FQDN must not break claiming on PostgreSQL.
        self.owner = f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def run_once(self) -> bool:
        now = utcnow()
        # Polling reads first, so an idle worker never takes SQLite's write lock.
        with self.database.transaction(read_only=True) as session:
            waiting = session.scalar(select(BulkAction.id).where(
                claimable(now, self.stale_after, self.owner)).limit(1))
        if waiting is None:
            return False
        with self.database.transaction() as session:
            job_id = claim_job(session, self.owner, self.stale_after)
        if job_id is None:
            return False
        log.info("bulk action claimed", extra={"bulk_action_id": job_id, "owner": self.owner})
        while not self.stopping:
            with self.database.transaction() as session:
                if not run_batch(session, job_id, self.owner, self.state_batch):
                    break
            if not self.database.is_postgres:
                # SQLite has one writer, and a waiting one polls the lock every 100 ms: without
                # a gap between batches, API writes (a cancel too) would wait for the whole job.
                self.pause(SQLITE_PAUSE)
        if self.stopping:
            with self.database.transaction() as session:
                release_job(session, job_id, self.owner)
        return True
