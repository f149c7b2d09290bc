"""Rating one cycle: per Thing, the monthly fee from the state history and the usage charges
from the daily roll-ups, in one set-based query streamed row by row.

A Thing pays the monthly fee when it was ACTIVE at any moment of the cycle: its state at the
cycle's start (the last change at or before it) was ACTIVE, or it became ACTIVE during the
cycle. So a Thing PROVISIONED or SUSPENDED for the whole cycle, or RETIRED before it began (or at
its first instant), pays none.
Each charge is computed exactly and rounded once, half-up, to the currency's minor unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from ..models import Thing, ThingStateChange, ThingTag, UsageDaily
from .tariffs import Tariff

MB = Decimal(2**20)
# ISO 4217 minor units where they are not 2.
MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3,
               "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3}


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))


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


@dataclass(frozen=True)
class Scope:
    thing_id: str | None = None
    things_group_id: str | None = None
    tag: str | None = None


def _rows(account_id: str, start: datetime, end: datetime, scope: Scope, after: str | None):  # type: ignore[no-untyped-def]
    before = aliased(ThingStateChange)
    state_at_start = (
        select(before.to_state)
        # `<=`: a change at the very first instant is the state the cycle starts in.
        .where(before.thing_id == Thing.id, before.changed_at <= start)
        .order_by(before.changed_at.desc(), before.id.desc()).limit(1)
        .correlate(Thing).scalar_subquery())
    during = aliased(ThingStateChange)
    activated_during = exists().where(during.thing_id == Thing.id, during.to_state == "ACTIVE",
                                      during.changed_at >= start, during.changed_at < end)
    usage = (
        select(UsageDaily.thing_id.label("thing_id"),
               func.sum(UsageDaily.bytes_up + UsageDaily.bytes_down).label("data_bytes"),
               func.sum(UsageDaily.sms_mt).label("sms_mt"),
               func.sum(UsageDaily.sms_mo).label("sms_mo"))
        .where(UsageDaily.account_id == account_id, UsageDaily.day >= start.date(),
               UsageDaily.day < end.date())
        .group_by(UsageDaily.thing_id).subquery())
    charged = or_(state_at_start == "ACTIVE", activated_during)
    statement = (
        select(Thing.id, Thing.iccid, Thing.things_group_id,
               charged.label("charged"),
               func.coalesce(usage.c.data_bytes, 0).label("data_bytes"),
               func.coalesce(usage.c.sms_mt, 0).label("sms_mt"),
               func.coalesce(usage.c.sms_mo, 0).label("sms_mo"))
        .outerjoin(usage, usage.c.thing_id == Thing.id)
        .where(Thing.account_id == account_id, Thing.created_at < end,
               or_(charged, usage.c.thing_id.is_not(None)))
        .order_by(Thing.id))
    if scope.thing_id:
        statement = statement.where(Thing.id == scope.thing_id)
    if scope.things_group_id:
        statement = statement.where(Thing.things_group_id == scope.things_group_id)
    if scope.tag:
        statement = statement.where(exists().where(and_(
            ThingTag.thing_id == Thing.id, ThingTag.account_id == account_id,
            ThingTag.tag == scope.tag)))
    if after:
        statement = statement.where(Thing.id > after)
    return statement


def rate_row(row, tariff: Tariff) -> Line:  # type: ignore[no-untyped-def]
    currency = tariff.currency
    fee = money(tariff.monthly_fee, currency) if row.charged else money(Decimal(0), currency)
    data_bytes = int(row.data_bytes)
    data_charge = money(Decimal(data_bytes) / MB * tariff.price_per_mb, currency)
    sms_mt, sms_mo = int(row.sms_mt), int(row.sms_mo)
    sms_charge = money(sms_mt * tariff.price_per_sms_mt + sms_mo * tariff.price_per_sms_mo,
                       currency)
    return Line(row.id, row.iccid, row.things_group_id, fee, data_bytes, data_charge, sms_mt,
                sms_mo, sms_charge, fee + data_charge + sms_charge)


def lines(session: Session, account_id: str, start: datetime, end: datetime, tariff: Tariff,
          scope: Scope = Scope(), *, after: str | None = None,
          limit: int | None = None) -> Iterator[Line]:
    statement = _rows(account_id, start, end, scope, after)
    if limit is not None:
        statement = statement.limit(limit)
    for row in session.execute(statement.execution_options(yield_per=2000)):
        yield rate_row(row, tariff)
