"""The per-cycle usage roll-up (`usage_cycles`): each Thing's usage of a billing cycle, the sum
of its `usage_daily` rows of that cycle.

Every writer of `usage_daily` adds the same increments here in the same transaction (RADIUS
accounting, SMS, `simplane usage import`), so the two never disagree and a cycle's report reads
one row per Thing instead of one per day. A row exists exactly when the Thing has at least one
day in the cycle (a day of zeros included): the report lists such a Thing even when it pays no
fee, as it did when it read the days."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from ..core.db import is_postgres, upsert
from ..models import UsageCycle
from .cycles import period_of

COUNTERS = ("bytes_up", "bytes_down", "sms_mt", "sms_mo")


def rebuild(session: Session, account_id: str) -> int:
    """The account's roll-up worked out again from its days, set-based (what migration 0012
    did for the rows already there): a repair, and how a benchmark that writes days directly
    gets the roll-up the writers would have kept. The number of rows."""
    month = ("to_char(day, 'YYYY-MM')" if is_postgres(session)
             else "strftime('%Y-%m', day)")
    session.execute(delete(UsageCycle).where(UsageCycle.account_id == account_id))
    return session.execute(text(f"""
        INSERT INTO usage_cycles (period, thing_id, account_id, bytes_up, bytes_down, sms_mt,
                                  sms_mo)
        SELECT {month}, thing_id, account_id, sum(bytes_up), sum(bytes_down), sum(sms_mt),
               sum(sms_mo)
        FROM usage_daily
        WHERE account_id = :account
        GROUP BY 1, 2, 3
        ORDER BY 1, 2
    """), {"account": account_id}).rowcount


def add_days(session: Session, days: Iterable[dict[str, Any]]) -> None:
    """Add increments just added to `usage_daily` (rows with thing_id, day, account_id and
    any of the counters) to their Things' cycles, in key order."""
    upsert(session, UsageCycle, cycle_rows(days), keys=("period", "thing_id"),
           increment=COUNTERS)


def cycle_rows(days: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `add_days` adds to `usage_cycles` for these days, in key order (for a writer that
    writes them with its other rows, `core.db.write_rows`)."""
    cycles: dict[tuple[str, str], dict[str, Any]] = {}
    for day in days:
        period = period_of(day["day"])
        row = cycles.get((period, day["thing_id"]))
        if row is None:
            row = cycles[(period, day["thing_id"])] = {
                "period": period, "thing_id": day["thing_id"], "account_id": day["account_id"],
                **dict.fromkeys(COUNTERS, 0)}
        for name in COUNTERS:
            row[name] += day.get(name, 0)
    return [cycles[key] for key in sorted(cycles)]
