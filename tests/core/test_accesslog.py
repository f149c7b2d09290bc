"""The access log: a request's JSON line, kept and written in whole-line pieces."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import time
from collections.abc import Iterator

import pytest

from simplane.core import accesslog
from simplane.core.accesslog import CHUNK_BYTES, ACCESS_LOG, AccessLog, _chunks
from simplane.core.logging import JsonFormatter


class _Stream:
    """A stream that records each write."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in "".join(self.writes).splitlines()]


@pytest.fixture
def stderr() -> Iterator[_Stream]:
    stream = _Stream()
    logger = logging.getLogger("simplane")
    level = logger.level
    logger.setLevel(logging.INFO)  # as `configure_logging` sets it by default
    yield stream
    logger.setLevel(level)


def test_a_line_is_what_the_json_formatter_makes_of_the_same_record(stderr):
    log = AccessLog(stderr)
    log.request("req_1", "GET", "/v1/things", 200, 1.25)
    log.flush()
    [line] = stderr.lines()
    record = logging.LogRecord("simplane.http", logging.INFO, __file__, 1, "request", (), None)
    record.__dict__.update(request_id="req_1", method="GET", path="/v1/things", status=200,
                           duration_ms=1.25)
    formatted = json.loads(JsonFormatter().format(record))
    assert list(line) == list(formatted)
    assert {k: v for k, v in line.items() if k != "time"} == {
        k: v for k, v in formatted.items() if k != "time"}
    assert line["time"].endswith("Z")


def test_nothing_is_written_above_info(stderr):
    logging.getLogger("simplane").setLevel(logging.WARNING)
    log = AccessLog(stderr)
    log.request("req_1", "GET", "/v1/things", 200, 1.0)
    log.flush()
    assert stderr.writes == []


def test_lines_go_out_in_whole_line_pieces_of_at_most_a_chunk(stderr, monkeypatch):
    monkeypatch.setattr(accesslog, "FLUSH_SECONDS", 3600.0)
    log = AccessLog(stderr)
    paths = [f"/v1/things/thg_{n:05d}" for n in range(200)]

    async def serve() -> None:  # on a loop, where the lines are kept
        for path in paths:
            log.request("req_1", "GET", path, 200, 1.0)

    asyncio.run(serve())
    log.flush()
    assert 1 < len(stderr.writes) < len(paths)
    assert all(len(w.encode()) <= CHUNK_BYTES and w.endswith("\n") for w in stderr.writes)
    assert [line["path"] for line in stderr.lines()] == paths


def test_a_line_longer_than_a_chunk_goes_alone():
    lines = [b"a\n", b"b" * CHUNK_BYTES + b"\n", b"c\n"]
    assert _chunks(lines) == lines
    assert _chunks([b"a\n", b"c\n"]) == [b"a\nc\n"]


def test_lines_are_kept_until_the_loop_flushes_them(stderr, monkeypatch):
    monkeypatch.setattr(accesslog, "FLUSH_SECONDS", 0.05)
    log = AccessLog(stderr)

    async def serve() -> tuple[int, int]:
        log.request("req_1", "GET", "/v1/things", 200, 1.0)
        log.request("req_2", "GET", "/v1/things", 200, 1.0)
        kept = len(stderr.writes)
        await asyncio.sleep(0.5)
        return kept, len(stderr.lines())

    assert asyncio.run(serve()) == (0, 2)


def test_lines_overdue_go_out_with_the_next_when_their_loop_has_ended(stderr, monkeypatch):
    monkeypatch.setattr(accesslog, "FLUSH_SECONDS", 0.2)
    log = AccessLog(stderr)

    async def one(request_id: str) -> None:
        log.request(request_id, "GET", "/v1/things", 200, 1.0)

    asyncio.run(one("req_1"))  # its loop ends before the flush it asked for
    time.sleep(0.3)
    assert stderr.writes == []
    asyncio.run(one("req_2"))
    assert [line["request_id"] for line in stderr.lines()] == ["req_1", "req_2"]


def test_a_served_request_is_logged_with_its_id(shared_tenant, stderr):
    request_id = f"probe-{secrets.token_hex(6)}"
    before = ACCESS_LOG.stream
    ACCESS_LOG.write_to(stderr)
    try:
        response = shared_tenant.admin.get("/v1/me", headers={"X-Request-Id": request_id})
        assert response.status_code == 200
        ACCESS_LOG.flush()
    finally:
        ACCESS_LOG.write_to(before)
    lines = [line for line in stderr.lines() if line["request_id"] == request_id]
    assert len(lines) == 1
    assert (lines[0]["method"], lines[0]["path"], lines[0]["status"]) == ("GET", "/v1/me", 200)
    assert lines[0]["message"] == "request" and lines[0]["logger"] == "simplane.http"


def test_lines_for_a_closed_stream_are_dropped_without_an_error():
    stream = io.StringIO()
    log = AccessLog(stream)
    stream.close()
    log.request("req_1", "GET", "/v1/things", 200, 1.0)
    log.flush()
