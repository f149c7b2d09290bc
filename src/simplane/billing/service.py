"""Billing reports, cycle closing, and usage attribution to the right cycle."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, bindparam, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from ..core.db import is_postgres, stream_column
from ..core.errors import bad_field, not_found, precondition
from ..core.ids import new_id
from ..core.paging import decode_cursor, encode_cursor
from ..models import Account, BillingCycle, BillingLine, ThingTag, utcnow
from . import rating, tariffs
from .cycles import bounds, next_period, period_of, periods_between
from .schemas import CurrentTariff, LineOut, LinePage, ReportOut, TariffOut, Totals


def _text(value: Decimal) -> str:
    return format(value, "f")


def _price(value: Decimal, currency: str) -> str:
    """At least the currency's minor unit ("2.00"), more only where the price has it
    ("0.0125" per MB)."""
    minor = rating.quantum(currency)
    trimmed = value.normalize()
    return _text(trimmed if trimmed.as_tuple().exponent < minor.as_tuple().exponent  # type: ignore[operator]
                 else value.quantize(minor))


def tariff_out(tariff: tariffs.Tariff) -> TariffOut:
    currency = tariff.currency
    return TariffOut(currency=currency, monthly_fee=_price(tariff.monthly_fee, currency),
                     price_per_mb=_price(tariff.price_per_mb, currency),
                     price_per_sms_mt=_price(tariff.price_per_sms_mt, currency),
                     price_per_sms_mo=_price(tariff.price_per_sms_mo, currency),
                     effective_from=tariff.effective_from)


def current_tariff(session: Session, account_id: str, now: datetime | None = None) -> CurrentTariff:
    period = period_of(now or utcnow())
    tariff = tariffs.tariff_for(session, account_id, period)
    if tariff is None:
        raise not_found("tariff of account", account_id)
    upcoming = tariffs.scheduled_after(session, account_id, period)
    return CurrentTariff(**tariff_out(tariff).model_dump(),
                         next=tariff_out(upcoming) if upcoming else None)


def is_closed(session: Session, account_id: str, period: str) -> bool:
    return session.scalar(_CLOSED_CYCLE, {"account": account_id, "period": period}) is not None


# Built once, over the table's columns (no ORM entity to process): every RADIUS accounting
# batch that carries usage asks.
_cycles = BillingCycle.__table__
_CLOSED_CYCLE = select(_cycles.c.id).where(_cycles.c.account_id == bindparam("account"),
                                           _cycles.c.period == bindparam("period"))


def _line_out(line: rating.Line | BillingLine) -> LineOut:
    return LineOut(thing_id=line.thing_id, iccid=line.iccid, things_group_id=line.things_group_id,
                   monthly_fee=_text(line.monthly_fee), data_bytes=line.data_bytes,
                   data_charge=_text(line.data_charge), sms_mt=line.sms_mt, sms_mo=line.sms_mo,
                   sms_charge=_text(line.sms_charge), total=_text(line.total))


@dataclass
class _Sum:
    things_charged: int = 0
    monthly_fees: Decimal = Decimal(0)
    data_bytes: int = 0
    data_charges: Decimal = Decimal(0)
    sms_mt: int = 0
    sms_mo: int = 0
    sms_charges: Decimal = Decimal(0)
    total: Decimal = Decimal(0)

    def add(self, line: rating.Line | BillingLine) -> None:
        self.things_charged += 1 if line.monthly_fee > 0 else 0
        self.monthly_fees += line.monthly_fee
        self.data_bytes += line.data_bytes
        self.data_charges += line.data_charge
        self.sms_mt += line.sms_mt
        self.sms_mo += line.sms_mo
        self.sms_charges += line.sms_charge
        self.total += line.total

    def out(self, currency: str) -> Totals:
        q = rating.quantum(currency)
        return Totals(things_charged=self.things_charged,
                      monthly_fees=_text(self.monthly_fees.quantize(q)),
                      data_bytes=self.data_bytes, data_charges=_text(self.data_charges.quantize(q)),
                      sms_mt=self.sms_mt, sms_mo=self.sms_mo,
                      sms_charges=_text(self.sms_charges.quantize(q)),
                      total=_text(self.total.quantize(q)))


@dataclass
class ReportRequest:
    account_id: str
    period: str
    scope: rating.Scope
    limit: int
    cursor: str | None


def _check_period(session: Session, account_id: str, period: str, now: datetime) -> None:
    bounds(period)  # validates the name
    account = session.get(Account, account_id)
    assert account is not None
    if period > period_of(now):
        raise bad_field("period", f"{period} has not begun yet (the open cycle is "
                        f"{period_of(now)})")
    if period < period_of(account.created_at):
        raise bad_field("period", f"{period} is before the account existed "
                        f"({period_of(account.created_at)})")


def _closed_lines(session: Session, account_id: str, period: str, scope: rating.Scope,
                  after: str | None = None, limit: int | None = None):  # type: ignore[no-untyped-def]
    statement = select(BillingLine).where(_frozen(account_id, period, scope, after))
    statement = statement.order_by(BillingLine.thing_id)
    if limit is not None:
        statement = statement.limit(limit)
    return session.scalars(statement.execution_options(yield_per=2000))


def _frozen(account_id: str, period: str, scope: rating.Scope, after: str | None):  # type: ignore[no-untyped-def]
    conditions = [BillingLine.account_id == account_id, BillingLine.period == period]
    if scope.thing_id:
        conditions.append(BillingLine.thing_id == scope.thing_id)
    if scope.things_group_id:
        conditions.append(BillingLine.things_group_id == scope.things_group_id)
    if scope.tag:
        conditions.append(exists().where(
            ThingTag.thing_id == BillingLine.thing_id, ThingTag.account_id == account_id,
            ThingTag.tag == scope.tag))
    if after:
        conditions.append(BillingLine.thing_id > after)
    return and_(*conditions)


def _unfrozen(line: BillingLine, currency: str) -> rating.Line:
    # The columns keep 6 decimals; the report shows the currency's minor unit, as when open.
    def m(value: Decimal) -> Decimal:
        return rating.money(value, currency)

    return rating.Line(line.thing_id, line.iccid, line.things_group_id, m(line.monthly_fee),
                       line.data_bytes, m(line.data_charge), line.sms_mt, line.sms_mo,
                       m(line.sms_charge), m(line.total))


def _line_statement(account_id: str, period: str, scope: rating.Scope, tariff: tariffs.Tariff,
                    closed: bool, after: str | None = None):  # type: ignore[no-untyped-def]
    """PostgreSQL: the report's lines as one statement, the columns of `rating.Line` with money
    at the minor unit, in Thing order: rated in NUMERIC while the cycle is open, the frozen lines
    rounded as `_unfrozen` does once it is closed."""
    if not closed:
        start, end = bounds(period)
        return rating.rated(account_id, start, end, tariff, scope, after=after)
    digits = rating.places(tariff.currency)
    columns = [BillingLine.thing_id, BillingLine.iccid, BillingLine.things_group_id,
               func.round(BillingLine.monthly_fee, digits).label("monthly_fee"),
               BillingLine.data_bytes,
               func.round(BillingLine.data_charge, digits).label("data_charge"),
               BillingLine.sms_mt, BillingLine.sms_mo,
               func.round(BillingLine.sms_charge, digits).label("sms_charge"),
               func.round(BillingLine.total, digits).label("total")]
    return (select(*columns).where(_frozen(account_id, period, scope, after))
            .order_by(BillingLine.thing_id))


def iter_lines(session: Session, account_id: str, period: str, scope: rating.Scope, *,
               after: str | None = None, limit: int | None = None,
               now: datetime | None = None) -> Iterator[rating.Line]:
    tariff = tariffs.tariff_for(session, account_id, period)
    assert tariff is not None
    closed = is_closed(session, account_id, period)
    if is_postgres(session) and closed:
        statement = _line_statement(account_id, period, scope, tariff, closed, after)
        if limit is not None:
            statement = statement.limit(limit)
        for row in session.execute(statement):
            yield rating.Line(*row)
        return
    if closed:
        for frozen in _closed_lines(session, account_id, period, scope, after, limit):
            yield _unfrozen(frozen, tariff.currency)
        return
    start, end = bounds(period)
    yield from rating.lines(session, account_id, start, end, tariff, scope, after=after,
                            limit=limit)


def _totals(session: Session, account_id: str, period: str, scope: rating.Scope,
            tariff: tariffs.Tariff) -> _Sum:
    """The sums of the report's (rounded) lines: on PostgreSQL one aggregate over the lines'
    statement, elsewhere a pass over the lines."""
    if not is_postgres(session):
        totals = _Sum()
        for line in iter_lines(session, account_id, period, scope):
            totals.add(line)
        return totals
    rating.for_reports(session)
    closed = is_closed(session, account_id, period)
    rows = _line_statement(account_id, period, scope, tariff, closed).order_by(None).subquery()

    def total(column):  # type: ignore[no-untyped-def]
        return func.coalesce(func.sum(column), 0)

    row = session.execute(select(
        func.count().filter(rows.c.monthly_fee > 0), total(rows.c.monthly_fee),
        total(rows.c.data_bytes), total(rows.c.data_charge), total(rows.c.sms_mt),
        total(rows.c.sms_mo), total(rows.c.sms_charge), total(rows.c.total))).one()
    return _Sum(int(row[0]), Decimal(row[1]), int(row[2]), Decimal(row[3]), int(row[4]),
                int(row[5]), Decimal(row[6]), Decimal(row[7]))


def check_report(session: Session, account_id: str, period: str,
                 now: datetime | None = None) -> tariffs.Tariff:
    """The tariff of a report that can be made; raises what a request for it must answer."""
    _check_period(session, account_id, period, now or utcnow())
    tariff = tariffs.tariff_for(session, account_id, period)
    if tariff is None:
        raise precondition("no_tariff", f"account {account_id} has no tariff for {period}")
    return tariff


def report(session: Session, request: ReportRequest, now: datetime | None = None) -> ReportOut:
    tariff = check_report(session, request.account_id, request.period, now)
    totals = _totals(session, request.account_id, request.period, request.scope, tariff)
    after = decode_cursor(request.cursor) if request.cursor else None
    page = list(iter_lines(session, request.account_id, request.period, request.scope,
                           after=after, limit=request.limit + 1))
    next_cursor = encode_cursor(page[request.limit - 1].thing_id) if len(page) > request.limit \
        else None
    start, end = bounds(request.period)
    closed = is_closed(session, request.account_id, request.period)
    return ReportOut(period=request.period, start=start, end=end,
                     status="CLOSED" if closed else "OPEN", currency=tariff.currency,
                     totals=totals.out(tariff.currency),
                     lines=LinePage(items=[_line_out(x) for x in page[:request.limit]],
                                    next_cursor=next_cursor))


CSV_HEADER = ("thing_id,iccid,things_group_id,monthly_fee,data_bytes,data_charge,sms_mt,sms_mo,"
              "sms_charge,total\r\n")


def _csv_line(line: rating.Line) -> str:
    return (f"{line.thing_id},{line.iccid},{line.things_group_id},{_text(line.monthly_fee)},"
            f"{line.data_bytes},{_text(line.data_charge)},{line.sms_mt},{line.sms_mo},"
            f"{_text(line.sms_charge)},{_text(line.total)}\r\n")


def csv_chunks(session: Session, account_id: str, period: str,
               scope: rating.Scope) -> Iterator[bytes]:
    """The whole report as CSV, in chunks: on PostgreSQL the database formats the lines,
    elsewhere they are formatted here."""
    yield CSV_HEADER.encode()
    if is_postgres(session):
        tariff = tariffs.tariff_for(session, account_id, period)
        assert tariff is not None
        rating.for_reports(session)
        closed = is_closed(session, account_id, period)
        lines = _line_statement(account_id, period, scope, tariff, closed).subquery()
        # Formatted by the database as the line's text: no value holds a comma, a quote or a
        # line break (ids, ICCIDs and numbers), so no CSV quoting is ever needed.
        text_line = func.concat(func.concat_ws(",", *(lines.c[c] for c in rating.LINE_COLUMNS)),
                                literal("\r\n"))
        yield from stream_column(session, select(func.convert_to(text_line, literal("UTF8")))
                                 .order_by(lines.c.thing_id))
        return
    batch: list[str] = []
    for line in iter_lines(session, account_id, period, scope):
        batch.append(_csv_line(line))
        if len(batch) == 2000:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()


def close_due_cycles(session: Session, now: datetime, grace: timedelta) -> list[tuple[str, str]]:
    """Close every ended cycle whose grace period for late usage is over; freeze its lines."""
    closed = []
    open_period = period_of(now)
    for account in session.scalars(select(Account).order_by(Account.id)):
        for period in periods_between(period_of(account.created_at), open_period):
            if period == open_period or bounds(period)[1] + grace > now:
                break
            if is_closed(session, account.id, period):
                continue
            _close(session, account.id, period, now)
            closed.append((account.id, period))
    return closed


def _close(session: Session, account_id: str, period: str, now: datetime) -> None:
    tariff = tariffs.tariff_for(session, account_id, period)
    if tariff is None:
        return
    start, end = bounds(period)
    batch = []
    for line in rating.lines(session, account_id, start, end, tariff):
        batch.append({"id": new_id("billing_line"), "account_id": account_id, "period": period,
                      **{k: getattr(line, k) for k in (
                          "thing_id", "iccid", "things_group_id", "monthly_fee", "data_bytes",
                          "data_charge", "sms_mt", "sms_mo", "sms_charge", "total")}})
        if len(batch) >= 5000:
            session.execute(insert(BillingLine), batch)
            batch = []
    if batch:
        session.execute(insert(BillingLine), batch)
    session.add(BillingCycle(id=new_id("billing_cycle"), account_id=account_id, period=period,
                             closed_at=now))
    session.flush()


def attribution_day(session: Session, account_id: str, when: datetime,
                    now: datetime | None = None) -> tuple[datetime, bool]:
    """The instant usage counts at, and whether it is late: usage reported for a CLOSED cycle
    counts in the open cycle instead (a closed cycle never changes)."""
    if is_closed(session, account_id, period_of(when)):
        return now or utcnow(), True
    return when, False


__all__ = ["ReportRequest", "attribution_day", "check_report", "close_due_cycles", "csv_chunks",
           "current_tariff", "is_closed", "next_period", "report"]
