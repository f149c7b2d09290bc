"""Helpers for the billing tests: histories written with explicit timestamps, reports read over
HTTP.

Billing depends on when things happened, so the tests place an account, its tariff, its Things'
state changes and their usage at chosen instants in the past (the clock is the data, never a
sleep). Each arrangement is one transaction: a closer running elsewhere sees all of it or none.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from simplane.billing.cycles import period_of
from simplane.core.ids import new_id
from simplane.models import Account, TariffVersion, Thing, ThingStateChange, UsageCycle, UsageDaily
from simplane.radius.service import add_daily

MB = 2**20
INT_COLUMNS = ("data_bytes", "sms_mt", "sms_mo")


def at(text: str) -> datetime:
    """An instant written as `2025-03-31T23:59:59` (always UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Arrangement:
    def __init__(self, session: Session, account_id: str) -> None:
        self.session = session
        self.account_id = account_id

    def history(self, thing_id: str, shipped: datetime,
                changes: list[tuple[datetime, str]] = ()) -> None:  # type: ignore[assignment]
        """Replace the Thing's state history: shipped PROVISIONED, then each (instant, state)."""
        self.session.execute(delete(ThingStateChange).where(ThingStateChange.thing_id == thing_id))
        rows, state = [], None
        for when, to_state in [(shipped, "PROVISIONED"), *changes]:
            rows.append({"id": new_id("state_change"), "account_id": self.account_id,
                         "thing_id": thing_id, "from_state": state, "to_state": to_state,
                         "changed_at": when, "source": "api"})
            state = to_state
        self.session.execute(insert(ThingStateChange), rows)
        activated = next((when for when, s in changes if s == "ACTIVE"), None)
        self.session.execute(update(Thing).where(Thing.id == thing_id).values(
            created_at=shipped, updated_at=rows[-1]["changed_at"], state=state,
            activated_at=activated))

    def usage(self, thing_id: str, when: datetime, **counts: int) -> bool:
        return add_daily(self.session, self.account_id, thing_id, when, **counts)

    def tariff_versions(self, *effective_from: str) -> None:
        """Move the account's tariff versions, oldest first, to these cycles."""
        versions = self.session.query(TariffVersion).filter(
            TariffVersion.account_id == self.account_id).order_by(
            TariffVersion.effective_from).all()
        assert len(versions) == len(effective_from), versions
        for version, period in zip(versions, effective_from, strict=True):
            version.effective_from = period
        self.session.flush()


@contextmanager
def arrange(tenant, created: datetime, *, move_tariff: bool = True) -> Iterator[Arrangement]:  # type: ignore[no-untyped-def]
    """The account as if created at `created`, its tariff in force since then."""
    with tenant.backend.database.transaction() as session:
        session.execute(update(Account).where(Account.id == tenant.account_id)
                        .values(created_at=created))
        arrangement = Arrangement(session, tenant.account_id)
        if move_tariff:
            arrangement.tariff_versions(period_of(created))
        yield arrangement


def report(client: httpx.Client, period: str, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/billing/reports", params={"period": period, **params})
    assert response.status_code == 200, response.text
    return response.json()


def all_lines(client: httpx.Client, period: str, limit: int = 1000,
              **scope: str) -> list[dict[str, Any]]:
    """Every line of the report, page by page."""
    lines: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **scope}
        if cursor:
            params["cursor"] = cursor
        page = report(client, period, **params)["lines"]
        lines.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return lines


def csv_lines(client: httpx.Client, period: str, **scope: str) -> list[dict[str, Any]]:
    response = client.get("/v1/billing/reports", params={"period": period, **scope},
                          headers={"Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    for row in rows:
        for name in INT_COLUMNS:
            row[name] = int(row[name])
    return rows


def by_thing(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["thing_id"]: line for line in lines}


def line(thing: dict[str, Any], group_id: str, *, fee: str, data_bytes: int = 0,
         data: str = "0.00", sms_mt: int = 0, sms_mo: int = 0, sms: str = "0.00",
         total: str) -> dict[str, Any]:
    return {"thing_id": thing["id"], "iccid": thing["iccid"], "things_group_id": group_id,
            "monthly_fee": fee, "data_bytes": data_bytes, "data_charge": data, "sms_mt": sms_mt,
            "sms_mo": sms_mo, "sms_charge": sms, "total": total}


def cycles_and_days(session: Session, account_id: str) -> tuple[dict, dict]:
    """The account's per-cycle roll-up, and the same worked out from its days: (period,
    thing_id) -> (bytes_up, bytes_down, sms_mt, sms_mo). Every usage writer keeps them equal."""
    counters = ("bytes_up", "bytes_down", "sms_mt", "sms_mo")
    cycles = {(row[0], row[1]): tuple(row[2:]) for row in session.execute(
        select(UsageCycle.period, UsageCycle.thing_id,
               *(getattr(UsageCycle, name) for name in counters))
        .where(UsageCycle.account_id == account_id))}
    days: dict[tuple[str, str], list[int]] = {}
    for day, thing_id, *values in session.execute(
            select(UsageDaily.day, UsageDaily.thing_id,
                   *(getattr(UsageDaily, name) for name in counters))
            .where(UsageDaily.account_id == account_id)):
        sums = days.setdefault((period_of(day), thing_id), [0, 0, 0, 0])
        for i, value in enumerate(values):
            sums[i] += value
    return cycles, {key: tuple(value) for key, value in days.items()}


def assert_cycles_match_days(database, account_id: str) -> dict:  # type: ignore[no-untyped-def]
    """The roll-up equals the sum of the days, row for row; the roll-up, for more asserts."""
    with database.transaction(read_only=True) as session:
        cycles, days = cycles_and_days(session, account_id)
    assert cycles == days
    return cycles
