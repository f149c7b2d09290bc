"""JSON log lines, one per event, carrying the request id."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def iso_time(seconds: float) -> str:
    """A log line's time: UTC, ISO 8601, with a Z."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            # orjson: a request's log line is written on the event loop, every request.
            return orjson.dumps(line, default=str).decode()
        except TypeError:  # what orjson refuses (an int beyond 64 bits, a non-text key)
            return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("simplane")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def trim_records_for_serving() -> None:
    """Leave out of every log record what no line here prints: where the call was made (a
    walk up the stack per record), and the thread's and process's names. These are the
    standard library's own switches (the logging HOWTO's "Optimization"). They hold for the
    whole process, so only `serve` sets them, not an app embedded in another program or in
    tests, whose formatters may print them. A served single-Thing read logs one line: ~1.6 us
    less of ~8.6 us a line in isolation."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
