"""The JSON log line: one object per event, with the record's extra fields; its time; what
`serve` leaves out of records."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from simplane.core.logging import JsonFormatter, iso_time


def _line(**extra: object) -> dict:
    record = logging.LogRecord("simplane.http", logging.INFO, __file__, 1, "request %s", ("x",),
                               None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))


def test_a_line_carries_time_level_logger_message_and_extras():
    line = _line(request_id="req_1", status=200, duration_ms=1.25,
                 at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert line["level"] == "info" and line["logger"] == "simplane.http"
    assert line["message"] == "request x"
    assert line["time"].endswith("Z") and datetime.fromisoformat(line["time"][:-1])
    assert (line["request_id"], line["status"], line["duration_ms"]) == ("req_1", 200, 1.25)
    assert line["at"].startswith("2026-01-02")


def test_values_json_cannot_hold_natively_are_written_as_text():
    line = _line(big=2**70, keyed={1: "a"}, thing=object())
    assert line["big"] == 2**70 and line["keyed"] == {"1": "a"}
    assert line["thing"].startswith("<object object")


def test_an_exception_is_written_with_its_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("simplane", logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"]


@settings(max_examples=2000)
@given(st.one_of(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.integers(min_value=0, max_value=4_000_000_000).map(float),  # no microseconds
    st.integers(min_value=0, max_value=4_000_000_000).map(lambda s: s + 0.9999996),  # rounds up
))
def test_a_lines_time_is_what_datetime_writes(seconds):
    assert iso_time(seconds) == datetime.fromtimestamp(seconds, UTC).isoformat().replace(
        "+00:00", "Z")


def test_serving_trims_what_records_carry():
    # In a process of its own: the switches hold for the whole process.
    code = ("import logging\n"
            "from simplane.core.logging import trim_records_for_serving\n"
            "records = []\n"
            "handler = logging.Handler()\n"
            "handler.emit = records.append\n"
            "logger = logging.getLogger('probe')\n"
            "logger.addHandler(handler)\n"
            "logger.warning('before')\n"
            "trim_records_for_serving()\n"
            "logger.warning('after')\n"
            "for r in records: print(r.lineno, r.threadName, r.processName)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.splitlines()
    assert before.split()[0] == "8" and before.split()[1] == "MainThread"
    assert after.split() == ["0", "None", "None"]
