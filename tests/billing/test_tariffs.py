"""Tariffs: a re-pricing applies from the next cycle and every version is kept, so each cycle is
rated at the price it began with."""

from __future__ import annotations

from decimal import Decimal

from billkit import arrange, at, report

from simplane.accounts.service import set_tariff
from simplane.billing.cycles import next_period, period_of
from simplane.models import utcnow


def tariff(client) -> dict:  # type: ignore[no-untyped-def]
    response = client.get("/v1/billing/tariff")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_change_is_scheduled_for_the_next_cycle(new_tenant, backend):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal("1.50"), price_per_mb=Decimal("0.0125"),
                        price_per_sms_mt=Decimal("0.05"), price_per_sms_mo=Decimal(0))
    now = period_of(utcnow())
    # Money shows at least the currency's minor unit, more where the price has it.
    initial = {"currency": "EUR", "monthly_fee": "1.50", "price_per_mb": "0.0125",
               "price_per_sms_mt": "0.05", "price_per_sms_mo": "0.00", "effective_from": now}
    assert tariff(tenant.client("billing")) == {**initial, "next": None}

    thing = tenant.things(1)[0]
    assert tenant.admin.patch(f"/v1/things/{thing['id']}",
                              json={"state": "ACTIVE"}).status_code == 200
    with backend.database.transaction() as session:
        set_tariff(session, tenant.account_id, monthly_fee=Decimal(3),
                   price_per_mb=Decimal("0.02"))
    scheduled = {**initial, "monthly_fee": "3.00", "price_per_mb": "0.02",
                 "effective_from": next_period(now)}
    assert tariff(tenant.admin) == {**initial, "next": scheduled}
    # The open cycle keeps the price it began with.
    assert report(tenant.admin, now)["totals"]["monthly_fees"] == "1.50"

    # A second change within the cycle replaces the one scheduled; it does not stack.
    with backend.database.transaction() as session:
        set_tariff(session, tenant.account_id, currency="USD")
    assert tariff(tenant.admin) == {**initial, "next": {**scheduled, "currency": "USD"}}
    assert report(tenant.admin, now)["currency"] == "EUR"


def test_each_cycle_is_rated_at_the_version_in_force(new_tenant, backend):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal("1.00"), price_per_mb=Decimal("0.10"))
    thing = tenant.things(1)[0]
    with backend.database.transaction() as session:
        set_tariff(session, tenant.account_id, monthly_fee=Decimal("4.00"))
    with arrange(tenant, at("2025-01-05T00:00:00"), move_tariff=False) as arranged:
        # The first version as if set at creation, the second as if set during February.
        arranged.tariff_versions("2025-01", "2025-03")
        arranged.history(thing["id"], at("2025-01-06T00:00:00"),
                         [(at("2025-01-07T00:00:00"), "ACTIVE")])
        for day in ("2025-02-28T23:00:00", "2025-03-01T01:00:00"):
            arranged.usage(thing["id"], at(day), bytes_up=2**20)

    assert report(tenant.admin, "2025-02")["totals"]["total"] == "1.10"
    assert report(tenant.admin, "2025-03")["totals"]["total"] == "4.10"
    assert tariff(tenant.admin) == {"currency": "EUR", "monthly_fee": "4.00",
                                    "price_per_mb": "0.10", "price_per_sms_mt": "0.00",
                                    "price_per_sms_mo": "0.00",
                                    "effective_from": "2025-03", "next": None}
