"""Billing cycles: calendar months in UTC, named YYYY-MM."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from ..core.errors import bad_field

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_period(period: str) -> tuple[int, int]:
    match = _PERIOD.match(period)
    if not match:
        raise bad_field("period", f"{period!r} is not a billing cycle name such as 2026-01")
    year = int(match.group(1))
    if not 1 <= year <= 9998:  # the cycle and the next one must be dates Python can hold
        raise bad_field("period", f"{period!r} is out of range")
    return year, int(match.group(2))


def bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of the cycle as UTC instants."""
    year, month = parse_period(period)
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def period_of(moment: datetime | date) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def next_period(period: str) -> str:
    return period_of(bounds(period)[1])


def periods_between(first: str, last: str) -> list[str]:
    periods, current = [], first
    while current <= last:
        periods.append(current)
        current = next_period(current)
    return periods
