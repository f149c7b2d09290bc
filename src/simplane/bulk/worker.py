"""The bulk-action worker of one `serve` process: claims a job, runs it batch by batch."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select

from ..core.db import Database
from ..core.workers import PollingWorker
from ..models import BulkAction, utcnow
from .service import (
    STALE_AFTER,
    STATE_ACTIONS,
    JobLost,
    Slice,
    claim_job,
    claimable,
    plan_slices,
    release_job,
    run_batch,
    run_slice,
    state_batch_size,
)

log = logging.getLogger("simplane.bulk")
SQLITE_PAUSE = 0.15


class BulkWorker(PollingWorker):
    thread_name = "bulk-worker"

    def __init__(self, database: Database, interval: float = 0.2,
                 stale_after: timedelta = STALE_AFTER, state_batch: int | None = None,
                 parallel_batches: int = 1) -> None:
        super().__init__(interval=interval, join_timeout=30)
        self.database = database
        self.stale_after = stale_after
        self.state_batch = state_batch  # None: the engine's STATE_BATCH_SIZE
        # Batches of a state action run at once, each a transaction of its own (PostgreSQL;
        # SQLite has one writer).
        self.parallel_batches = parallel_batches if database.is_postgres else 1
        self._slices = (ThreadPoolExecutor(self.parallel_batches, thread_name_prefix="bulk-slice")
                        if self.parallel_batches > 1 else None)
        # bulk_actions.owner is 40 characters: a long FQDN must not break claiming on PostgreSQL.
        self.owner = f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def stop(self) -> None:
        super().stop()
        if self._slices is not None:
            self._slices.shutdown(wait=True)

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
            action = session.get(BulkAction, job_id).action if job_id else None
        if job_id is None:
            return False
        log.info("bulk action claimed", extra={"bulk_action_id": job_id, "owner": self.owner})
        in_rounds = self._slices is not None and action in STATE_ACTIONS
        while not self.stopping:
            if in_rounds:
                if not self._run_round(job_id):
                    break
                continue
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

    def _run_round(self, job_id: str) -> bool:
        """One round of slices side by side; False when the job is finished or lost."""
        assert self._slices is not None
        with self.database.transaction() as session:
            size = self.state_batch or state_batch_size(session)
            slices = plan_slices(session, job_id, self.owner, size, self.parallel_batches)
        if not slices:
            return False
        finished = [threading.Event() for _ in slices]
        futures = [self._slices.submit(self._run_slice, job_id, piece,
                                       finished[index - 1] if index else None, finished[index])
                   for index, piece in enumerate(slices)]
        errors = [error for error in (future.exception() for future in futures) if error]
        if any(isinstance(error, JobLost) for error in errors):
            log.warning("bulk action lost", extra={"bulk_action_id": job_id, "owner": self.owner})
            return False
        if errors:
            raise errors[0]
        return True

    def _run_slice(self, job_id: str, piece: Slice, before: threading.Event | None,
                   finished: threading.Event) -> None:
        try:
            with self.database.transaction() as session:
                run_slice(session, job_id, self.owner, piece,
                          before.wait if before is not None else lambda: None)
        finally:
            finished.set()  # committed, or rolled back: the next slice records either way
