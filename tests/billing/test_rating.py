"""The two ways of rating a cycle agree, to the digit: PostgreSQL's NUMERIC rating inside the
report query (`rating.rated`, what the report, its totals and its CSV use there) and the Python
rating of each line (`rating.rate_row`, what SQLite uses). Awkward values on purpose: ties at
the minor unit (half-up, not to even), byte counts in the terabytes, prices with six decimals,
currencies with 0 and 3 minor units, zero usage, SMS only, activation mid-cycle. The fee flags
are checked against the rule worked out in Python from the history rows."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from billkit import MB, arrange, at
from sqlalchemy import select

from simplane.billing import rating
from simplane.billing.cycles import bounds
from simplane.billing.tariffs import Tariff
from simplane.models import Thing, ThingStateChange

JUNE = "2025-06"
START, END = bounds(JUNE)
SHIPPED = at("2025-04-02T10:00:00")
BEFORE = at("2025-05-03T10:00:00")
TB = 2**40


def tariff(currency: str = "EUR", fee: str = "0", mb: str = "0", mt: str = "0",
           mo: str = "0") -> Tariff:
    return Tariff(currency, Decimal(fee), Decimal(mb), Decimal(mt), Decimal(mo), JUNE)


TARIFFS = [
    tariff(fee="2.00", mb="0.01", mt="0.05", mo="0.025"),
    tariff(fee="1.005", mb="0.000001", mt="0.000005", mo="0.999999"),
    tariff(fee="9.999999", mb="123456.789012", mt="0.015", mo="0.0025"),
    tariff(fee="0", mb="0", mt="0", mo="0"),
    tariff("JPY", fee="100", mb="5", mt="1.5", mo="0.5"),
    tariff("KWD", fee="3.0005", mb="0.0125", mt="0.0015", mo="0.0005"),
]


def text(line: rating.Line) -> tuple[str, ...]:
    """The line as the report writes it: equal Decimals with another exponent ("1.0" and
    "1.00") would print differently."""
    return tuple(format(v, "f") if isinstance(v, Decimal) else str(v)
                 for v in (getattr(line, c) for c in rating.LINE_COLUMNS))


def python_lines(session, account_id: str, tariff_: Tariff) -> list[rating.Line]:  # type: ignore[no-untyped-def]
    rows = session.execute(rating.quantities(account_id, START, END)).all()
    return [rating.rate_row(row, tariff_) for row in rows]


def sql_lines(session, account_id: str, tariff_: Tariff) -> list[rating.Line]:  # type: ignore[no-untyped-def]
    rating.for_reports(session)
    return [rating.Line(*row)
            for row in session.execute(rating.rated(account_id, START, END, tariff_)).all()]


def fee_rule(changes: list[ThingStateChange]) -> bool:
    """api.md §9 worked out in Python: ACTIVE at the cycle's first instant (the last change at
    or before it, later id first on a tie) or made ACTIVE during the cycle."""
    ordered = sorted(changes, key=lambda c: (c.changed_at, c.id))
    at_start = [c for c in ordered if c.changed_at <= START]
    if at_start and at_start[-1].to_state == "ACTIVE":
        return True
    return any(c.to_state == "ACTIVE" and START <= c.changed_at < END for c in ordered)


def check_fees(session, account_id: str) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    flags = {row.id: bool(row.charged)
             for row in session.execute(rating.quantities(account_id, START, END))}
    histories: dict[str, list[ThingStateChange]] = {}
    for change in session.scalars(select(ThingStateChange).where(
            ThingStateChange.account_id == account_id)):
        histories.setdefault(change.thing_id, []).append(change)
    for thing_id, charged in flags.items():
        assert charged == fee_rule(histories[thing_id]), thing_id
    return flags


def things_of(session, account_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(Thing.id).where(Thing.account_id == account_id)
                                .order_by(Thing.id)))


def test_sql_and_python_rating_agree_on_awkward_values(new_tenant, backend):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal("2.00"), price_per_mb=Decimal("0.01"))
    tenant.ship(11)
    with backend.database.transaction(read_only=True) as session:
        ids = things_of(session, tenant.account_id)
    names = ["tie", "below_tie", "terabytes", "zero_usage", "sms_only", "mid_cycle",
             "provisioned", "same_instant_suspended", "same_instant_active", "retired_before",
             "silent"]
    thing = dict(zip(names, ids, strict=True))
    with arrange(tenant, at("2025-04-01T00:00:00")) as a:
        for name in names:
            a.history(thing[name], SHIPPED, [(BEFORE, "ACTIVE")])
        # 0.5 MB x 0.01 = 0.005 exactly: 0.01 half-up (0.00 to even); one byte less: 0.00.
        a.usage(thing["tie"], at("2025-06-01T00:00:00"), bytes_up=MB // 2)
        a.usage(thing["below_tie"], at("2025-06-30T23:59:59"), bytes_up=MB // 2 - 1)
        # Terabytes over many days: 30 x 7 TB plus a remainder of odd bytes.
        for day in range(30):
            a.usage(thing["terabytes"], START + timedelta(days=day, hours=5),
                    bytes_up=7 * TB + day, bytes_down=3 * TB + 12345)
        a.usage(thing["zero_usage"], at("2025-06-11T00:00:00"))
        a.usage(thing["sms_only"], at("2025-06-12T00:00:00"), sms_mt=3, sms_mo=1)
        a.history(thing["mid_cycle"], SHIPPED, [(at("2025-06-15T13:00:00"), "ACTIVE")])
        a.usage(thing["mid_cycle"], at("2025-06-16T00:00:00"), bytes_down=3 * MB + 1, sms_mo=7)
        a.history(thing["provisioned"], SHIPPED)
        a.usage(thing["provisioned"], at("2025-06-03T00:00:00"), bytes_down=MB // 4)
        # Two changes at one instant before the cycle: the later one (by id) is the state.
        a.history(thing["same_instant_suspended"], SHIPPED,
                  [(BEFORE, "ACTIVE"), (BEFORE, "SUSPENDED")])
        a.usage(thing["same_instant_suspended"], at("2025-06-03T00:00:00"), sms_mt=1)
        a.history(thing["same_instant_active"], SHIPPED,
                  [(BEFORE, "SUSPENDED"), (BEFORE, "ACTIVE")])
        a.history(thing["retired_before"], SHIPPED,
                  [(BEFORE, "ACTIVE"), (at("2025-05-31T23:59:59"), "RETIRED")])
        a.usage(thing["retired_before"], at("2025-06-02T00:00:00"), bytes_up=1)
        a.history(thing["silent"], SHIPPED)  # no fee, no usage: no line

    with backend.database.transaction(read_only=True) as session:
        flags = check_fees(session, tenant.account_id)
        assert thing["silent"] not in flags
        assert {name: flags[thing[name]] for name in names if name != "silent"} == {
            "tie": True, "below_tie": True, "terabytes": True, "zero_usage": True,
            "sms_only": True, "mid_cycle": True, "provisioned": False,
            "same_instant_suspended": False, "same_instant_active": True,
            "retired_before": False}

        for tariff_ in TARIFFS:
            python = python_lines(session, tenant.account_id, tariff_)
            assert [x.thing_id for x in python] == sorted(thing[n] for n in names if n != "silent")
            if backend.name == "postgresql":
                assert [text(x) for x in sql_lines(session, tenant.account_id, tariff_)] == \
                    [text(x) for x in python], tariff_

        # The first tariff worked out by hand.
        by_id = {x.thing_id: text(x) for x in python_lines(session, tenant.account_id,
                                                           TARIFFS[0])}
        expected = {
            "tie": ("2.00", str(MB // 2), "0.01", "0", "0", "0.00", "2.01"),
            "below_tie": ("2.00", str(MB // 2 - 1), "0.00", "0", "0", "0.00", "2.00"),
            # (300 TB + 435 + 370350 bytes) x 0.01 / MB = 3145728.0035..., 3 SMS x 0.05
            # + 1 x 0.025 = 0.175 -> 0.18.
            "terabytes": ("2.00", str(300 * TB + 435 + 370350), "3145728.00", "0", "0", "0.00",
                          "3145730.00"),
            "zero_usage": ("2.00", "0", "0.00", "0", "0", "0.00", "2.00"),
            "sms_only": ("2.00", "0", "0.00", "3", "1", "0.18", "2.18"),
            "mid_cycle": ("2.00", str(3 * MB + 1), "0.03", "0", "7", "0.18", "2.21"),
            "provisioned": ("0.00", str(MB // 4), "0.00", "0", "0", "0.00", "0.00"),
        }
        for name, (fee, data_bytes, data, mt, mo, sms, total) in expected.items():
            line = by_id[thing[name]]
            assert (line[3], line[4], line[5], line[6], line[7], line[8], line[9]) == \
                (fee, data_bytes, data, mt, mo, sms, total), name


def test_sql_and_python_rating_agree_on_random_values(new_tenant, backend):  # type: ignore[no-untyped-def]
    rng = random.Random(20250601)
    tenant = new_tenant()
    tenant.ship(120)
    with backend.database.transaction(read_only=True) as session:
        ids = things_of(session, tenant.account_id)
    states = ["PROVISIONED", "ACTIVE", "SUSPENDED", "RETIRED"]
    instants = [at("2025-05-31T23:59:59"), START, at("2025-06-01T00:00:01"),
                at("2025-06-15T12:00:00"), at("2025-06-30T23:59:59"), END,
                at("2025-07-02T00:00:00")]
    with arrange(tenant, at("2025-04-01T00:00:00")) as a:
        for thing_id in ids:
            changes = sorted((rng.choice(instants), rng.choice(states))
                             for _ in range(rng.randrange(0, 4)))
            a.history(thing_id, SHIPPED, changes)
            for _ in range(rng.randrange(0, 4)):
                a.usage(thing_id, START + timedelta(days=rng.randrange(0, 30)),
                        bytes_up=rng.choice([0, 1, MB // 2, rng.randrange(0, 50 * TB)]),
                        bytes_down=rng.randrange(0, 10 * MB),
                        sms_mt=rng.randrange(0, 1000), sms_mo=rng.choice([0, 1, 999]))

    def price() -> str:
        return str(Decimal(rng.randrange(0, 10**9)).scaleb(-6))

    tariffs = [tariff(rng.choice(["EUR", "JPY", "KWD"]), price(), price(), price(), price())
               for _ in range(25)]
    with backend.database.transaction(read_only=True) as session:
        check_fees(session, tenant.account_id)
        for tariff_ in tariffs:
            python = python_lines(session, tenant.account_id, tariff_)
            for line in python:
                places = rating.places(tariff_.currency)
                for value in (line.monthly_fee, line.data_charge, line.sms_charge, line.total):
                    assert -value.as_tuple().exponent == places  # type: ignore[operator]
            if backend.name == "postgresql":
                assert [text(x) for x in sql_lines(session, tenant.account_id, tariff_)] == \
                    [text(x) for x in python], tariff_
