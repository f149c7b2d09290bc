"""Background work of a `serve` process: daemon threads polling the database for work.

Every worker (disconnects, SMS delivery, bulk actions, webhook deliveries, billing close) keeps
its work in the database and claims it there, so a pass that fails is logged and simply tried
again, and a stopped process loses nothing.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger("simplane.workers")
IDLE_CEILING_SECONDS = 1.0


class PollingWorker(ABC):
    thread_name = "worker"
    # False for a worker that spaces its idle polls itself (the webhook threads take turns).
    idle_backoff = True

    def __init__(self, *, interval: float, threads: int = 1, join_timeout: float = 10.0) -> None:
        self.interval = interval
        self.join_timeout = join_timeout
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.serve, daemon=True,
                             name=self.thread_name if threads == 1 else f"{self.thread_name}-{i}")
            for i in range(threads)]

    @abstractmethod
    def run_once(self) -> object:
        """One pass; a truthy result means it found work, so the next pass follows at once."""

    @property
    def _idle_ceiling(self) -> float:
        return max(self.interval, IDLE_CEILING_SECONDS) if self.idle_backoff else self.interval

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.join_timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def pause(self, seconds: float) -> None:
        """Sleep, waking at once when the worker is stopped."""
        self._stop.wait(seconds)

    def serve(self) -> None:
        """The thread's body; a worker holding per-thread resources wraps `loop` in them."""
        self.loop(self.run_once)

    def loop(self, poll: Callable[[], object]) -> None:
        # Idle passes back off from `interval` to IDLE_CEILING_SECONDS: every poll is a
        # transaction, and seven threads polling five times a second cost a `serve` process
        # about a tenth of a core that RADIUS and the API need; work found resets it.
        pause = self.interval
        while not self.stopping:
            try:
                worked = poll()
            except Exception:  # noqa: BLE001 - the work stays in the database; try again
                log.exception("%s pass failed", self.thread_name)
                worked = False
            if worked:
                pause = self.interval
            else:
                self.pause(pause)
                pause = min(pause * 2, self._idle_ceiling)
