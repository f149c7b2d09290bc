from datetime import UTC, datetime
from decimal import Decimal

from simplane.billing.cycles import period_of
from simplane.radius.service import add_daily


def test_report(new_tenant, backend):
    tenant = new_tenant(monthly_fee=Decimal("1.50"), price_per_mb=Decimal("0.10"), price_per_sms_mt=Decimal("0.05"), price_per_sms_mo=Decimal("0.02"))
    things = tenant.things(3)
    for t in things[:2]:
        assert tenant.admin.patch(f"/v1/things/{t['id']}", json={"state": "ACTIVE"}).status_code == 200
    now = datetime.now(UTC)
    with backend.database.transaction() as s:
        add_daily(s, tenant.account_id, things[0]["id"], now, bytes_up=2**20, bytes_down=2**19, sms_mt=3)
    period = period_of(now)
    r = tenant.admin.get("/v1/billing/reports", params={"period": period})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totals"]["things_charged"] == 2
    assert body["totals"]["total"] == "3.30", body  # 1.50*2 + 0.15 + 0.15
    csv = tenant.admin.get("/v1/billing/reports", params={"period": period}, headers={"Accept": "text/csv"})
    assert csv.status_code == 200 and csv.text.count("\n") == 3, csv.text
    cur = tenant.admin.get("/v1/billing/reports/current", follow_redirects=False)
    assert cur.status_code == 302
    assert tenant.admin.get("/v1/billing/tariff").json()["monthly_fee"] == "1.5"
