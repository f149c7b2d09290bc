"""Closing: a cycle closes once it has ended and its grace period for late usage is over; its
report is frozen from then on, and usage that arrives later counts in the open cycle, marked
late."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from billkit import MB, arrange, assert_cycles_match_days, at, csv_lines, report
from sqlalchemy import select

from simplane.accounts.service import set_tariff
from simplane.billing.closing import close_once
from simplane.billing.cycles import bounds, period_of, periods_between
from simplane.billing.service import close_due_cycles, is_closed
from simplane.core.db import advisory_lock
from simplane.models import UsageDaily, utcnow
from simplane.radius.service import add_daily

GRACE = timedelta(days=3)


def close(session, account_id: str, now) -> set[str]:  # type: ignore[no-untyped-def]
    """The periods of this account that closing at `now` closed (other accounts' are not ours
    to assert on)."""
    advisory_lock(session, "simplane:billing-close")  # as the closing worker does
    return {period for account, period in close_due_cycles(session, now, GRACE)
            if account == account_id}


def test_closed_cycle_is_frozen_and_late_usage_counts_in_the_open_cycle(new_tenant, backend):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal("2.00"), price_per_mb=Decimal("1.00"),
                        price_per_sms_mo=Decimal("0.10"))
    thing = tenant.things(1)[0]
    account_id = tenant.account_id
    # One transaction from the arrangement to the closing: a closer elsewhere cannot get in
    # between and close these past cycles first.
    with arrange(tenant, at("2025-08-10T00:00:00")) as arranged:
        arranged.history(thing["id"], at("2025-08-11T00:00:00"),
                         [(at("2025-08-15T00:00:00"), "ACTIVE")])
        assert arranged.usage(thing["id"], at("2025-09-10T00:00:00"), bytes_up=MB) is False
        session = arranged.session

        # September ended on 1 October; with 3 days of grace it stays open until 4 October.
        assert close(session, account_id, at("2025-10-03T23:59:59")) == {"2025-08"}
        assert not is_closed(session, account_id, "2025-09")
        # Usage arriving during the grace period still counts in its own cycle.
        assert arranged.usage(thing["id"], at("2025-09-30T23:59:59"), bytes_down=MB) is False

        assert close(session, account_id, at("2025-10-04T00:00:00")) == {"2025-09"}
        assert close(session, account_id, at("2025-10-05T00:00:00")) == set()

    september = report(tenant.admin, "2025-09")
    assert september["status"] == "CLOSED"
    assert september["totals"]["total"] == "4.00"
    [line] = september["lines"]["items"]
    assert (line["data_bytes"], line["monthly_fee"], line["total"]) == (2 * MB, "2.00", "4.00")
    assert report(tenant.admin, "2025-08")["status"] == "CLOSED"
    frozen_csv = csv_lines(tenant.admin, "2025-09")
    assert frozen_csv == [line]
    assert report(tenant.admin, "2025-09", thing_id=thing["id"])["lines"]["items"] == [line]
    group = report(tenant.admin, "2025-09", things_group_id=thing["things_group_id"])
    assert group["lines"]["items"] == [line] and group["totals"] == september["totals"]

    # Late usage for September, then a re-pricing and a retirement: none of it reaches the
    # closed report.
    with backend.database.transaction() as session:
        late = add_daily(session, account_id, thing["id"], at("2025-09-20T10:00:00"),
                         bytes_up=5 * MB, sms_mo=2)
        set_tariff(session, account_id, monthly_fee=Decimal(9), price_per_mb=Decimal(9))
    assert late is True
    assert tenant.admin.patch(f"/v1/things/{thing['id']}",
                              json={"state": "RETIRED"}).status_code == 200
    assert report(tenant.admin, "2025-09") == september
    assert csv_lines(tenant.admin, "2025-09") == frozen_csv

    # The open cycle carries it (at its own price: the re-pricing applies next cycle).
    today = utcnow()
    [current] = report(tenant.admin, period_of(today))["lines"]["items"]
    assert (current["data_bytes"], current["sms_mo"], current["data_charge"],
            current["sms_charge"]) == (5 * MB, 2, "5.00", "0.20")
    with backend.database.transaction(read_only=True) as session:
        days = dict(session.execute(select(UsageDaily.day, UsageDaily.bytes_up).where(
            UsageDaily.thing_id == thing["id"])).all())
    assert days == {at("2025-09-10T00:00:00").date(): MB, at("2025-09-30T00:00:00").date(): 0,
                    today.date(): 5 * MB}
    assert assert_cycles_match_days(backend.database, account_id) == {
        ("2025-09", thing["id"]): (MB, MB, 0, 0),
        (period_of(today), thing["id"]): (5 * MB, 0, 0, 2)}


def test_close_once_closes_every_ended_cycle_past_its_grace(new_tenant, backend):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal(1))
    thing = tenant.things(1)[0]
    created = utcnow() - timedelta(days=80)
    with arrange(tenant, created) as arranged:
        arranged.history(thing["id"], created, [(created + timedelta(seconds=1), "ACTIVE")])

    close_once(backend.database, 3)
    now = utcnow()
    expected = [p for p in periods_between(period_of(created), period_of(now))
                if bounds(p)[1] + GRACE <= now]
    with backend.database.transaction(read_only=True) as session:
        closed = [p for p in periods_between(period_of(created), period_of(now))
                  if is_closed(session, tenant.account_id, p)]
    assert closed == expected and len(expected) >= 1
    for period in expected:
        body = report(tenant.admin, period)
        assert (body["status"], body["totals"]["monthly_fees"]) == ("CLOSED", "1.00")
    assert report(tenant.admin, period_of(now))["status"] == "OPEN"
