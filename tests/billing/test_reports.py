"""The report resource: paged lines, the CSV form, the current cycle's redirect, validation (400,
never 422), tenancy (404) and which roles may read it."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from billkit import all_lines, csv_lines

from simplane.billing.cycles import next_period, period_of
from simplane.models import utcnow


def activate(tenant, count: int) -> list[dict]:  # type: ignore[no-untyped-def]
    things = tenant.things(count)
    for thing in things:
        response = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE"})
        assert response.status_code == 200, response.text
    return things


def problem(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if code:
        assert body["code"] == code, body
    return body


def test_lines_page_by_cursor_and_link_and_match_the_csv(new_tenant):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal("1.10"))
    things = activate(tenant, 5)
    period = period_of(utcnow())

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = tenant.admin.get("/v1/billing/reports", params={"period": period, **params})
        assert response.status_code == 200, response.text
        body = response.json()
        # Totals are the whole report's, whichever page is asked for.
        assert body["totals"]["things_charged"] == 5 and body["totals"]["total"] == "5.50"
        assert body["status"] == "OPEN"
        pages.append(body["lines"]["items"])
        cursor = body["lines"]["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            break
        assert 'rel="next"' in response.headers["link"]
        assert f"cursor={cursor}" in response.headers["link"]
    assert [len(p) for p in pages] == [2, 2, 1]
    ids = [line["thing_id"] for page in pages for line in page]
    assert ids == sorted(t["id"] for t in things)
    assert csv_lines(tenant.admin, period) == [line for page in pages for line in page]


def test_csv_streams_every_line_without_paging(new_tenant):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal(1))
    activate(tenant, 3)
    period = period_of(utcnow())
    response = tenant.admin.get("/v1/billing/reports", params={"period": period, "limit": 1},
                                headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.text.splitlines()[0] == ("thing_id,iccid,things_group_id,monthly_fee,"
                                             "data_bytes,data_charge,sms_mt,sms_mo,sms_charge,"
                                             "total")
    assert len(response.text.splitlines()) == 4
    assert f"simplane-{period}.csv" in response.headers["content-disposition"]
    assert csv_lines(tenant.admin, period) == all_lines(tenant.admin, period, limit=1)


def test_current_redirects_to_the_open_cycle(tenant):  # type: ignore[no-untyped-def]
    response = tenant.admin.get("/v1/billing/reports/current", follow_redirects=False)
    assert response.status_code == 302
    period = period_of(utcnow())
    assert response.headers["location"] == f"/v1/billing/reports?period={period}"
    followed = tenant.admin.get("/v1/billing/reports/current", follow_redirects=True)
    assert followed.status_code == 200
    assert followed.json()["period"] == period and followed.json()["status"] == "OPEN"


@pytest.mark.parametrize("period", ["2025-13", "2025-00", "2025-1", "25-01", "2025/01",
                                    "2025-01-01", "", "0000-01", "9999-12"])
def test_malformed_period_is_400_naming_it(tenant, period):  # type: ignore[no-untyped-def]
    for accept in ("application/json", "text/csv"):
        body = problem(tenant.admin.get("/v1/billing/reports", params={"period": period},
                                        headers={"Accept": accept}), 400, "validation_error")
        assert [e["field"] for e in body["errors"]] == ["period"]


def test_period_outside_the_account_life_is_400(tenant):  # type: ignore[no-untyped-def]
    future = next_period(period_of(utcnow()))
    for accept in ("application/json", "text/csv"):
        body = problem(tenant.admin.get("/v1/billing/reports", params={"period": future},
                                        headers={"Accept": accept}), 400)
        assert body["errors"][0]["field"] == "period" and future in body["detail"]
    body = problem(tenant.admin.get("/v1/billing/reports", params={"period": "2001-01"}), 400)
    assert body["errors"][0]["field"] == "period" and "2001-01" in body["detail"]
    problem(tenant.admin.get("/v1/billing/reports"), 400, "validation_error")  # no period


def test_other_bad_parameters_are_400(tenant):  # type: ignore[no-untyped-def]
    thing = tenant.things(1)[0]
    period = period_of(utcnow())
    two = problem(tenant.admin.get("/v1/billing/reports", params={
        "period": period, "thing_id": thing["id"], "tag": "x"}), 400, "validation_error")
    assert sorted(e["field"] for e in two["errors"]) == ["tag", "thing_id"]
    three = problem(tenant.admin.get("/v1/billing/reports", params={
        "period": period, "thing_id": thing["id"], "things_group_id": thing["things_group_id"],
        "tag": "x"}, headers={"Accept": "text/csv"}), 400)
    assert len(three["errors"]) == 3
    for params, field in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"),
                          ({"limit": "many"}, "limit"), ({"cursor": "not-a-cursor"}, "cursor"),
                          ({"colour": "red"}, "colour")):
        body = problem(tenant.admin.get("/v1/billing/reports",
                                        params={"period": period, **params}), 400,
                       "validation_error")
        assert [e["field"] for e in body["errors"]] == [field], body


def test_another_accounts_thing_or_group_is_404(tenant, other_tenant):  # type: ignore[no-untyped-def]
    theirs = other_tenant.things(1)[0]
    period = period_of(utcnow())
    for params in ({"thing_id": theirs["id"]}, {"things_group_id": theirs["things_group_id"]},
                   {"thing_id": "thg_00000000000000000000000000000"}):
        for accept in ("application/json", "text/csv"):
            problem(tenant.admin.get("/v1/billing/reports", params={"period": period, **params},
                                     headers={"Accept": accept}), 404, "not_found")


@pytest.mark.parametrize("role", ["admin", "manager", "viewer", "billing"])
def test_every_role_reads_billing(tenant, role):  # type: ignore[no-untyped-def]
    client = tenant.client(role)
    period = period_of(utcnow())
    assert client.get("/v1/billing/tariff").status_code == 200
    assert client.get("/v1/billing/reports", params={"period": period}).status_code == 200
    csv = client.get("/v1/billing/reports", params={"period": period},
                     headers={"Accept": "text/csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert client.get("/v1/billing/reports/current").status_code == 302


def test_billing_needs_a_token_and_is_read_only(tenant):  # type: ignore[no-untyped-def]
    anonymous = httpx.Client(base_url=tenant.base_url)
    with anonymous:
        for path in ("/v1/billing/tariff", "/v1/billing/reports?period=2025-01",
                     "/v1/billing/reports/current"):
            response = anonymous.get(path)
            assert response.status_code == 401 and "Bearer" in response.headers["www-authenticate"]
    for path in ("/v1/billing/tariff", "/v1/billing/reports", "/v1/billing/reports/current"):
        response = tenant.admin.post(path, json={})
        assert response.status_code == 405 and response.headers["allow"] == "GET", response.text
