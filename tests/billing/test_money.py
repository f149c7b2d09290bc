"""Exact money for a small account, worked out by hand: MB is 2^20 bytes, each charge is rounded
once half-up to the minor unit, totals are sums of rounded lines (api.md §9)."""

from __future__ import annotations

from decimal import Decimal

from billkit import MB, all_lines, arrange, at, csv_lines, line, report

JUNE = "2025-06"
START = at("2025-06-01T00:00:00")
SHIPPED = at("2025-05-02T10:00:00")
ACTIVATED = at("2025-05-03T10:00:00")

ZERO_TOTALS = {"things_charged": 0, "monthly_fees": "0.00", "data_bytes": 0,
               "data_charges": "0.00", "sms_mt": 0, "sms_mo": 0, "sms_charges": "0.00",
               "total": "0.00"}


def test_exact_money_for_account_group_thing_and_tag(new_tenant):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal("2.00"), price_per_mb=Decimal("0.10"),
                        price_per_sms_mt=Decimal("0.05"), price_per_sms_mo=Decimal("0.025"))
    a, b, c, d, e = tenant.things(5)
    default_group = a["things_group_id"]
    created = tenant.admin.post("/v1/things-groups", json={"name": "Meters"})
    assert created.status_code == 201, created.text
    meters = created.json()["id"]
    for thing, body in ((a, {"things_group_id": meters, "tags": ["fleet"]}),
                        (b, {"things_group_id": meters, "tags": ["spare"]}),
                        (c, {"tags": ["fleet"]})):
        assert tenant.admin.patch(f"/v1/things/{thing['id']}", json=body).status_code == 200

    with arrange(tenant, at("2025-05-01T00:00:00")) as arranged:
        for thing in (a, b):
            arranged.history(thing["id"], SHIPPED, [(ACTIVATED, "ACTIVE")])
        arranged.history(c["id"], SHIPPED)  # PROVISIONED all June: test traffic, no fee
        arranged.history(d["id"], SHIPPED, [(at("2025-06-15T13:00:00"), "ACTIVE")])
        arranged.history(e["id"], SHIPPED)  # nothing at all: no line
        # A: 1.25 MB x 0.10 = 0.125 -> 0.13 (half-up, not to even); SMS 3 x 0.05 + 1 x 0.025
        # = 0.175 -> 0.18 (one rounding for both directions).
        arranged.usage(a["id"], at("2025-06-01T00:00:00"), bytes_up=MB, bytes_down=MB // 4,
                       sms_mt=3, sms_mo=1)
        # B: 0.25 MB -> 0.025 -> 0.03; SMS 5 x 0.025 = 0.125 -> 0.13.
        arranged.usage(b["id"], at("2025-06-30T23:59:59"), bytes_up=MB // 4, sms_mo=5)
        # C: 0.25 MB -> 0.03, no fee.
        arranged.usage(c["id"], at("2025-06-10T05:00:00"), bytes_down=MB // 4)
        # D: 2.5 MB over two days -> 0.25; 1 SMS MT -> 0.05. The days either side of June are
        # other cycles.
        arranged.usage(d["id"], at("2025-06-16T01:00:00"), bytes_up=MB, sms_mt=1)
        arranged.usage(d["id"], at("2025-06-20T01:00:00"), bytes_down=MB + MB // 2)
        arranged.usage(d["id"], at("2025-05-31T23:59:59"), bytes_up=7 * MB, sms_mo=9)
        arranged.usage(d["id"], at("2025-07-01T00:00:00"), bytes_down=5 * MB, sms_mt=4)

    lines = {
        "a": line(a, meters, fee="2.00", data_bytes=MB + MB // 4, data="0.13", sms_mt=3,
                  sms_mo=1, sms="0.18", total="2.31"),
        "b": line(b, meters, fee="2.00", data_bytes=MB // 4, data="0.03", sms_mo=5, sms="0.13",
                  total="2.16"),
        "c": line(c, default_group, fee="0.00", data_bytes=MB // 4, data="0.03", total="0.03"),
        "d": line(d, default_group, fee="2.00", data_bytes=MB * 5 // 2, data="0.25", sms_mt=1,
                  sms="0.05", total="2.30"),
    }

    def expect(*names: str) -> list[dict]:
        return sorted((lines[n] for n in names), key=lambda x: x["thing_id"])

    account = report(tenant.admin, JUNE)
    assert account["period"] == JUNE and account["currency"] == "EUR"
    assert account["start"] == "2025-06-01T00:00:00Z" and account["end"] == "2025-07-01T00:00:00Z"
    # Rounding once over the whole account would give 0.43 for data: lines are rounded first.
    assert account["totals"] == {"things_charged": 3, "monthly_fees": "6.00",
                                 "data_bytes": 4 * MB + MB // 4, "data_charges": "0.44",
                                 "sms_mt": 4, "sms_mo": 6, "sms_charges": "0.36", "total": "6.80"}
    assert account["lines"] == {"items": expect("a", "b", "c", "d"), "next_cursor": None}

    group = report(tenant.admin, JUNE, things_group_id=meters)
    assert group["totals"] == {"things_charged": 2, "monthly_fees": "4.00",
                               "data_bytes": MB + MB // 2, "data_charges": "0.16", "sms_mt": 3,
                               "sms_mo": 6, "sms_charges": "0.31", "total": "4.47"}
    assert group["lines"]["items"] == expect("a", "b")

    thing = report(tenant.admin, JUNE, thing_id=b["id"])
    assert thing["totals"] == {"things_charged": 1, "monthly_fees": "2.00",
                               "data_bytes": MB // 4, "data_charges": "0.03", "sms_mt": 0,
                               "sms_mo": 5, "sms_charges": "0.13", "total": "2.16"}
    assert thing["lines"]["items"] == expect("b")

    tag = report(tenant.admin, JUNE, tag="fleet")
    assert tag["totals"] == {"things_charged": 1, "monthly_fees": "2.00",
                             "data_bytes": MB + MB // 2, "data_charges": "0.16", "sms_mt": 3,
                             "sms_mo": 1, "sms_charges": "0.18", "total": "2.34"}
    assert tag["lines"]["items"] == expect("a", "c")

    assert report(tenant.admin, JUNE, tag="nobody-has-it")["totals"] == ZERO_TOTALS
    assert report(tenant.admin, JUNE, thing_id=e["id"])["totals"] == ZERO_TOTALS

    # The CSV carries exactly the JSON lines, for the account and for each scope.
    for scope in ({}, {"things_group_id": meters}, {"thing_id": b["id"]}, {"tag": "fleet"}):
        assert csv_lines(tenant.admin, JUNE, **scope) == all_lines(tenant.admin, JUNE, **scope)

    # May and July carry D's traffic outside June.
    may = report(tenant.admin, "2025-05", thing_id=d["id"])["lines"]["items"]
    assert [(x["data_bytes"], x["sms_mo"], x["monthly_fee"]) for x in may] == [(7 * MB, 9, "0.00")]
    july = report(tenant.admin, "2025-07", thing_id=d["id"])["lines"]["items"]
    assert [(x["data_bytes"], x["sms_mt"], x["monthly_fee"]) for x in july] == \
        [(5 * MB, 4, "2.00")]


def test_currency_without_minor_unit_rounds_half_up_to_whole_units(new_tenant):  # type: ignore[no-untyped-def]
    tenant = new_tenant(currency="JPY", monthly_fee=Decimal(100), price_per_mb=Decimal(5),
                        price_per_sms_mo=Decimal("1.5"))
    thing = tenant.things(1)[0]
    with arrange(tenant, at("2025-05-01T00:00:00")) as arranged:
        arranged.history(thing["id"], SHIPPED, [(ACTIVATED, "ACTIVE")])
        # 0.5 MB x 5 = 2.5 -> 3 and 1 x 1.5 = 1.5 -> 2 (to even would give 2 and 2).
        arranged.usage(thing["id"], at("2025-06-03T00:00:00"), bytes_down=MB // 2, sms_mo=1)

    body = report(tenant.admin, JUNE)
    assert body["currency"] == "JPY"
    assert body["lines"]["items"] == [line(thing, thing["things_group_id"], fee="100",
                                           data_bytes=MB // 2, data="3", sms_mo=1, sms="2",
                                           total="105")]
    assert body["totals"] == {"things_charged": 1, "monthly_fees": "100", "data_bytes": MB // 2,
                              "data_charges": "3", "sms_mt": 0, "sms_mo": 1, "sms_charges": "2",
                              "total": "105"}
