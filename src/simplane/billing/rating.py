"""Rating one cycle: per Thing, the monthly fee from the state history and the usage charges
from the usage roll-ups.

A Thing pays the monthly fee when it was ACTIVE at any moment of the cycle: its state at the
cycle's start (the last change at or before it) was ACTIVE, or it became ACTIVE during the
cycle. So a Thing PROVISIONED or SUSPENDED for the whole cycle, or RETIRED before it began (or at
its first instant), pays none.
Each charge is computed exactly and rounded once, half-up, to the currency's minor unit.

`quantities` is one set-based query: every Thing's usage (from the per-cycle roll-up,
`billing.rollups`) and fee flag, in id order, streamed.
The money is worked out from it in one of two ways that follow the same rules: in Python
(`rate_row`, any engine), or on PostgreSQL inside the same query in NUMERIC (`rated`), so a whole
report can leave the database as text without a Python step per line. The tests hold the two
equal on awkward values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal

from sqlalchemy import (
    ColumnElement,
    Numeric,
    Select,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from ..core.db import is_postgres
from ..models import Thing, ThingStateChange, ThingTag, UsageCycle
from .cycles import bounds, period_of
from .tariffs import Tariff

MB = Decimal(2**20)
# 1 / 2^20 has 20 decimals and no more: multiplying by it keeps a data charge exact in NUMERIC,
# where a division would be cut at a scale of the engine's choosing.
PER_BYTE = Decimal(1) / MB
# Wide enough that products of byte counts and 6-decimal prices are never rounded before the
# one rounding to the minor unit.
_EXACT = Context(prec=80)
# ISO 4217 minor units where they are not 2.
MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3,
               "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3}


def places(currency: str) -> int:
    return MINOR_UNITS.get(currency, 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-places(currency))


def money(value: Decimal, currency: str) -> Decimal:
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    thing_id: str
    iccid: str
    things_group_id: str
    monthly_fee: Decimal
    data_bytes: int
    data_charge: Decimal
    sms_mt: int
    sms_mo: int
    sms_charge: Decimal
    total: Decimal


LINE_COLUMNS = ("thing_id", "iccid", "things_group_id", "monthly_fee", "data_bytes",
                "data_charge", "sms_mt", "sms_mo", "sms_charge", "total")


@dataclass(frozen=True)
class Scope:
    thing_id: str | None = None
    things_group_id: str | None = None
    tag: str | None = None


def _things_in(account_id: str, scope: Scope, after: str | None) -> list[ColumnElement[bool]]:
    conditions = [Thing.account_id == account_id]
    if scope.thing_id:
        conditions.append(Thing.id == scope.thing_id)
    if scope.things_group_id:
        conditions.append(Thing.things_group_id == scope.things_group_id)
    if scope.tag:
        conditions.append(exists().where(ThingTag.thing_id == Thing.id,
                                         ThingTag.account_id == account_id,
                                         ThingTag.tag == scope.tag))
    if after:
        conditions.append(Thing.id > after)
    return conditions


def _of_things_in(thing_id: ColumnElement[str], account_id: str, scope: Scope,
                  after: str | None) -> list[ColumnElement[bool]]:
    """The same scope for rows that hold a Thing id (the state history)."""
    conditions: list[ColumnElement[bool]] = []
    if scope.thing_id:
        conditions.append(thing_id == scope.thing_id)
    if scope.things_group_id:
        conditions.append(thing_id.in_(select(Thing.id).where(
            Thing.account_id == account_id, Thing.things_group_id == scope.things_group_id)))
    if scope.tag:
        conditions.append(thing_id.in_(select(ThingTag.thing_id).where(
            ThingTag.account_id == account_id, ThingTag.tag == scope.tag)))
    if after:
        conditions.append(thing_id > after)
    return conditions


def _fee_payers(account_id: str, start: datetime, end: datetime, scope: Scope,
                after: str | None) -> Select:
    """The Things of the account that were ACTIVE at some moment of [start, end), from their
    state histories, set-based and in Thing order.

    A change is followed by the next one of its Thing (time, then id, order). An ACTIVE change
    made during the cycle counts; one made at or before the start counts when nothing followed
    it up to the start (it is the state the cycle starts in)."""
    change = ThingStateChange
    history = (
        select(change.thing_id, change.to_state, change.changed_at,
               func.lead(change.changed_at).over(partition_by=change.thing_id,
                                                 order_by=(change.changed_at, change.id))
               .label("followed_at"))
        .where(change.account_id == account_id, change.changed_at < end,
               *_of_things_in(change.thing_id, account_id, scope, after))
        .subquery("history"))
    return (select(history.c.thing_id)
            .where(history.c.to_state == "ACTIVE",
                   or_(history.c.changed_at >= start, history.c.followed_at.is_(None),
                       history.c.followed_at > start))
            .distinct())


def quantities(account_id: str, start: datetime, end: datetime, scope: Scope = Scope(), *,
               after: str | None = None) -> Select:
    """One row per Thing that pays the fee or has usage in the cycle, in id order: `id, iccid,
    things_group_id, charged, data_bytes, sms_mt, sms_mo`."""
    period = period_of(start)
    assert (start, end) == bounds(period), "a report covers one whole cycle"
    # The cycle's roll-up (billing.rollups): one row per Thing with usage, the sum of its days.
    # It is reached through the account's Things (a roll-up always belongs to its Thing's
    # account). Ordered and OFFSET 0, PostgreSQL plans it on its own: one range of the key's
    # index, already in Thing order; written into the outer join's condition, the cycle is
    # not seen as fixed there, and every row of it gets sorted.
    cycle = (select(UsageCycle.thing_id, UsageCycle.bytes_up, UsageCycle.bytes_down,
                    UsageCycle.sms_mt, UsageCycle.sms_mo)
             .where(UsageCycle.period == period)
             .order_by(UsageCycle.thing_id).offset(0).subquery("cycle"))
    summed = (
        select(Thing.id.label("id"), Thing.iccid.label("iccid"),
               Thing.things_group_id.label("things_group_id"),
               func.coalesce(cycle.c.bytes_up + cycle.c.bytes_down, 0).label("data_bytes"),
               func.coalesce(cycle.c.sms_mt, 0).label("sms_mt"),
               func.coalesce(cycle.c.sms_mo, 0).label("sms_mo"),
               cycle.c.thing_id.is_not(None).label("used"))
        .select_from(Thing).outerjoin(cycle, cycle.c.thing_id == Thing.id)
        .where(Thing.created_at < end, *_things_in(account_id, scope, after))
        .subquery("summed"))
    payers = _fee_payers(account_id, start, end, scope, after).subquery("payers")
    charged = payers.c.thing_id.is_not(None)
    return (select(summed.c.id, summed.c.iccid, summed.c.things_group_id,
                   charged.label("charged"), summed.c.data_bytes, summed.c.sms_mt,
                   summed.c.sms_mo)
            .select_from(summed.outerjoin(payers, payers.c.thing_id == summed.c.id))
            .where(or_(charged, summed.c.used))
            .order_by(summed.c.id))


def rate_row(row, tariff: Tariff) -> Line:  # type: ignore[no-untyped-def]
    currency = tariff.currency
    fee = money(tariff.monthly_fee if row.charged else Decimal(0), currency)
    data_bytes = int(row.data_bytes)
    data_charge = money(_EXACT.multiply(_EXACT.multiply(Decimal(data_bytes), tariff.price_per_mb),
                                        PER_BYTE), currency)
    sms_mt, sms_mo = int(row.sms_mt), int(row.sms_mo)
    sms_charge = money(_EXACT.add(_EXACT.multiply(Decimal(sms_mt), tariff.price_per_sms_mt),
                                  _EXACT.multiply(Decimal(sms_mo), tariff.price_per_sms_mo)),
                       currency)
    return Line(row.id, row.iccid, row.things_group_id, fee, data_bytes, data_charge, sms_mt,
                sms_mo, sms_charge, fee + data_charge + sms_charge)


def _number(value: Decimal) -> ColumnElement[Decimal]:
    return literal(value, Numeric())


def rated(account_id: str, start: datetime, end: datetime, tariff: Tariff,
          scope: Scope = Scope(), *, after: str | None = None) -> Select:
    """PostgreSQL: `quantities` rated in NUMERIC, the columns of a `Line` in id order, money
    rounded half-up to the minor unit (`round` on NUMERIC rounds ties away from zero, as
    ROUND_HALF_UP does)."""
    rows = quantities(account_id, start, end, scope, after=after).order_by(None).subquery(
        "quantities")
    digits = places(tariff.currency)
    fee = case((rows.c.charged, _number(money(tariff.monthly_fee, tariff.currency))),
               else_=_number(money(Decimal(0), tariff.currency)))
    data_charge = func.round(rows.c.data_bytes * _number(tariff.price_per_mb)
                             * _number(PER_BYTE), digits)
    sms_charge = func.round(rows.c.sms_mt * _number(tariff.price_per_sms_mt)
                            + rows.c.sms_mo * _number(tariff.price_per_sms_mo), digits)
    charges = (select(rows.c.id.label("thing_id"), rows.c.iccid, rows.c.things_group_id,
                      fee.label("monthly_fee"), rows.c.data_bytes,
                      data_charge.label("data_charge"), rows.c.sms_mt, rows.c.sms_mo,
                      sms_charge.label("sms_charge"))
               # OFFSET 0 keeps PostgreSQL from merging this into the query above, which would
               # work every charge out twice (once for its column, once for the total).
               .order_by(rows.c.id).offset(0).subquery("charges"))
    return (select(*charges.c, (charges.c.monthly_fee + charges.c.data_charge
                                + charges.c.sms_charge).label("total"))
            .order_by(charges.c.thing_id))


def for_reports(session: Session) -> None:
    """PostgreSQL: settings of a transaction that runs report queries. JIT compilation is off:
    the estimates of these plans cross its thresholds long before the work is big enough to pay
    for compiling (seconds of inlining and optimising for reports of 10,000 to 100,000 Things;
    no measurable gain at 1,000,000)."""
    if is_postgres(session):
        session.execute(text("SET LOCAL jit = off"))


def lines(session: Session, account_id: str, start: datetime, end: datetime, tariff: Tariff,
          scope: Scope = Scope(), *, after: str | None = None,
          limit: int | None = None) -> Iterator[Line]:
    if is_postgres(session):
        for_reports(session)
        statement = rated(account_id, start, end, tariff, scope, after=after)
        if limit is not None:
            statement = statement.limit(limit)
        for row in session.execute(statement.execution_options(yield_per=2000)):
            yield Line(*row)
        return
    statement = quantities(account_id, start, end, scope, after=after)
    if limit is not None:
        statement = statement.limit(limit)
    for row in session.execute(statement.execution_options(yield_per=2000)):
        yield rate_row(row, tariff)
