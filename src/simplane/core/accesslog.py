"""The access log: a JSON line a request, the same line `JsonFormatter` makes for a record of
`simplane.http`, written in batches.

Through `logging`, a served single-Thing read spent ~30 us of its ~150 us of CPU on its line:
a record, its handlers, the formatter's scan of the record, and a write and flush to stderr of
every line, on the event loop. Here the line is built from its fields and kept, and the lines
go out together at most FLUSH_SECONDS later, or as soon as they fill a chunk, and at shutdown
(nginx's `access_log ... buffer= flush=` does the same). What that changes: an access line may
come out after a warning logged later, and a process killed outright loses at most its last
FLUSH_SECONDS of lines. The `simplane` logger's level still decides (INFO writes them).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
from typing import TextIO

import orjson

from .logging import iso_time

FLUSH_SECONDS = 0.5
# A write of at most PIPE_BUF bytes to a pipe is one piece: the workers of a server share
# their stderr, and a longer write could be cut by another worker's line.
CHUNK_BYTES = 4096

_log = logging.getLogger("simplane.http")


class AccessLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._lines: list[bytes] = []
        self._size = 0
        self._due = 0.0  # when the oldest kept line is to be out
        self._lock = threading.Lock()  # apps embedded in tests serve from several threads

    def request(self, request_id: str, method: str, path: str, status: int,
                duration_ms: float) -> None:
        if not _log.isEnabledFor(logging.INFO):
            return
        line = orjson.dumps({
            "time": iso_time(time.time()), "level": "info", "logger": "simplane.http",
            "message": "request", "request_id": request_id, "method": method, "path": path,
            "status": status, "duration_ms": duration_ms}) + b"\n"
        now = time.monotonic()
        with self._lock:
            first = not self._lines
            if first:
                self._due = now + FLUSH_SECONDS
            self._lines.append(line)
            self._size += len(line)
            # Overdue too when the loop that was to flush has ended (an app run in tests).
            ready = self._size >= CHUNK_BYTES or now >= self._due
        if ready:
            self.flush()
        elif first:
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no event loop to come back to
                self.flush()

    @property
    def stream(self) -> TextIO:
        return self._stream

    def write_to(self, stream: TextIO) -> None:
        """Where the lines go from now on: `create_app` gives the stream its log handler got,
        as `logging` keeps the stream a handler was made with (a program that swaps
        sys.stderr later, such as a CLI test runner, does not get the server's lines)."""
        self.flush()
        self._stream = stream

    def flush(self) -> None:
        with self._lock:
            lines, self._lines, self._size = self._lines, [], 0
        if not lines:
            return
        stream = self._stream
        try:
            for chunk in _chunks(lines):
                stream.write(chunk.decode())
                stream.flush()
        except (OSError, ValueError):
            # A closed stream or a reader gone (at exit, say): the lines are lost, and a log
            # must not fail the request or the shutdown that wrote them (as `logging.shutdown`
            # does for its handlers).
            pass


def _chunks(lines: list[bytes]) -> list[bytes]:
    """The lines joined into pieces of at most CHUNK_BYTES (a longer line is a piece of its
    own), each ending with a whole line."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) > CHUNK_BYTES:
            chunks.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        chunks.append(b"".join(current))
    return chunks


ACCESS_LOG = AccessLog()
atexit.register(ACCESS_LOG.flush)
