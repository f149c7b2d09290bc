"""The monthly fee from the state history (api.md §9): charged when the Thing was ACTIVE at any
moment of the cycle [start, end); waived when PROVISIONED or SUSPENDED for all of it, or RETIRED
before it began. Histories cross the boundaries of March 2025 to the second."""

from __future__ import annotations

from decimal import Decimal

from billkit import all_lines, arrange, at, by_thing, report

JAN = at("2025-01-10T08:00:00")
ACTIVATED = at("2025-01-20T09:00:00")
IN_MARCH = at("2025-03-05T12:00:00")

# name: (shipped, [(instant, state), ...], March fee or None for no line, April fee or None)
CASES = {
    "active_whole_cycle": (JAN, [(ACTIVATED, "ACTIVE")], "2.00", "2.00"),
    "provisioned_whole_cycle": (JAN, [], "0.00", None),
    "suspended_whole_cycle": (JAN, [(ACTIVATED, "ACTIVE"),
                                    (at("2025-02-10T00:00:00"), "SUSPENDED")], "0.00", None),
    "suspended_part_of_cycle": (JAN, [(ACTIVATED, "ACTIVE"),
                                      (at("2025-03-10T00:00:00"), "SUSPENDED")], "2.00", None),
    "resumed_mid_cycle": (JAN, [(ACTIVATED, "ACTIVE"), (at("2025-02-10T00:00:00"), "SUSPENDED"),
                                (at("2025-03-20T00:00:00"), "ACTIVE")], "2.00", "2.00"),
    # Suspended at the cycle's very first instant: never ACTIVE at a moment of March.
    "suspended_at_first_second": (JAN, [(ACTIVATED, "ACTIVE"),
                                        (at("2025-03-01T00:00:00"), "SUSPENDED")], "0.00", None),
    "suspended_at_last_second": (JAN, [(ACTIVATED, "ACTIVE"),
                                       (at("2025-03-31T23:59:59"), "SUSPENDED")], "2.00", None),
    "activated_last_second": (JAN, [(at("2025-03-31T23:59:59"), "ACTIVE")], "2.00", "2.00"),
    "activated_first_second_of_next": (JAN, [(at("2025-04-01T00:00:00"), "ACTIVE")], "0.00",
                                       "2.00"),
    "activated_at_first_second": (JAN, [(at("2025-03-01T00:00:00"), "ACTIVE")], "2.00", "2.00"),
    "retired_mid_cycle": (JAN, [(ACTIVATED, "ACTIVE"), (at("2025-03-15T00:00:00"), "RETIRED")],
                          "2.00", None),
    "retired_before_cycle": (JAN, [(ACTIVATED, "ACTIVE"),
                                   (at("2025-02-28T23:59:59"), "RETIRED")], "0.00", None),
    "retired_at_first_second": (JAN, [(ACTIVATED, "ACTIVE"),
                                      (at("2025-03-01T00:00:00"), "RETIRED")], "0.00", None),
    "suspended_then_retired_in_cycle": (JAN, [(ACTIVATED, "ACTIVE"),
                                              (at("2025-02-10T00:00:00"), "SUSPENDED"),
                                              (at("2025-03-15T00:00:00"), "RETIRED")],
                                        "0.00", None),
    "shipped_after_cycle": (at("2025-04-02T00:00:00"), [(at("2025-04-03T00:00:00"), "ACTIVE")],
                            None, "2.00"),
}


def test_each_fee_rule_across_cycle_boundaries(new_tenant):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal(2), price_per_sms_mt=Decimal("0.01"))
    things = dict(zip(CASES, tenant.things(len(CASES)), strict=True))
    silent = tenant.things(1)[0]  # PROVISIONED, no usage: nothing to bill, so no line
    with arrange(tenant, at("2025-01-02T00:00:00")) as a:
        for name, (shipped, changes, _, _) in CASES.items():
            a.history(things[name]["id"], shipped, changes)
            if shipped < IN_MARCH:
                # One SMS each gives every Thing that existed in March a line, so a waived fee
                # shows as 0.00 rather than as a missing line.
                assert a.usage(things[name]["id"], IN_MARCH, sms_mt=1) is False
        a.history(silent["id"], JAN)

    march = by_thing(all_lines(tenant.admin, "2025-03"))
    fees = {name: march[things[name]["id"]]["monthly_fee"] if things[name]["id"] in march else None
            for name in CASES}
    assert fees == {name: case[2] for name, case in CASES.items()}
    assert silent["id"] not in march
    for name, expected in fees.items():
        if expected is not None:
            assert march[things[name]["id"]]["total"] == str(Decimal(expected) + Decimal("0.01"))

    april = by_thing(all_lines(tenant.admin, "2025-04"))
    assert {name: april[things[name]["id"]]["monthly_fee"] if things[name]["id"] in april
            else None for name in CASES} == {name: case[3] for name, case in CASES.items()}

    totals = report(tenant.admin, "2025-03")["totals"]
    charged = [name for name, case in CASES.items() if case[2] == "2.00"]
    billed = [name for name, case in CASES.items() if case[2] is not None]
    assert totals["things_charged"] == len(charged)
    assert totals["monthly_fees"] == f"{2 * len(charged)}.00"
    assert totals["sms_mt"] == len(billed)
    assert Decimal(totals["total"]) == 2 * len(charged) + Decimal("0.01") * len(billed)


def test_thing_shipped_after_the_cycle_has_no_line_even_when_asked_for(new_tenant):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal(2))
    thing = tenant.things(1)[0]
    with arrange(tenant, at("2025-01-02T00:00:00")) as a:
        a.history(thing["id"], at("2025-04-02T00:00:00"), [(at("2025-04-02T00:00:01"), "ACTIVE")])

    march = report(tenant.admin, "2025-03", thing_id=thing["id"])
    assert march["lines"] == {"items": [], "next_cursor": None}
    assert march["totals"]["things_charged"] == 0 and march["totals"]["total"] == "0.00"
    assert report(tenant.admin, "2025-04", thing_id=thing["id"])["totals"]["total"] == "2.00"
