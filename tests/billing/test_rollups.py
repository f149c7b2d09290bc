"""The per-cycle usage roll-up (`usage_cycles`) the report reads: every usage writer keeps it
equal to the sum of the Thing's days of the cycle, across cycle boundaries and for late usage;
a rebuild from the days gives the same rows. (The usage import, RADIUS accounting and SMS
tests check it too, through their own paths.)"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from billkit import MB, all_lines, arrange, assert_cycles_match_days, at, by_thing, cycles_and_days

from simplane.billing import rollups
from simplane.billing.closing import CLOSE_LOCK
from simplane.billing.service import close_due_cycles
from simplane.core.db import advisory_lock
from simplane.radius.service import _DailyUsage

GRACE_DAYS = 3


def test_every_writer_keeps_the_cycle_equal_to_its_days(new_tenant, backend):  # type: ignore[no-untyped-def]
    tenant = new_tenant(monthly_fee=Decimal(1), price_per_mb=Decimal(1),
                        price_per_sms_mt=Decimal("0.10"), price_per_sms_mo=Decimal(0))
    active, other, silent = tenant.things(3)
    with arrange(tenant, at("2025-08-10T00:00:00")) as arranged:
        for thing in (active, other):
            arranged.history(thing["id"], at("2025-08-11T00:00:00"),
                             [(at("2025-08-12T00:00:00"), "ACTIVE")])
        arranged.history(silent["id"], at("2025-08-11T00:00:00"))  # PROVISIONED throughout
        session = arranged.session
        # One at a time (SMS, tests), several days and cycles.
        arranged.usage(active["id"], at("2025-08-31T23:59:59"), bytes_up=3, sms_mt=1)
        arranged.usage(active["id"], at("2025-09-01T00:00:00"), bytes_down=MB, sms_mo=2)
        arranged.usage(active["id"], at("2025-09-15T12:00:00"), bytes_up=MB, sms_mt=4)
        # A day of zeros: the Thing gets a line (of zeros) though it pays no fee.
        arranged.usage(silent["id"], at("2025-09-03T00:00:00"))
        # RADIUS accounting's batch: increments summed per Thing and day, one upsert each.
        batch = _DailyUsage(session)
        for when, thing, up, down in [
                (at("2025-09-30T23:59:59"), active, 5, 7), (at("2025-09-30T23:00:00"), active, 1, 1),
                (at("2025-10-01T00:00:00"), active, 11, 13), (at("2025-09-02T00:00:00"), other, MB, 0),
                (at("2025-10-02T00:00:00"), other, 0, 2 * MB)]:
            batch.add(tenant.account_id, thing["id"], when, bytes_up=up, bytes_down=down)
        batch.write()
        # September closes; what comes for it later counts today, in the open cycle.
        advisory_lock(session, CLOSE_LOCK)
        close_due_cycles(session, at("2025-10-04T00:00:00"), timedelta(days=GRACE_DAYS))
        late = _DailyUsage(session)
        assert late.add(tenant.account_id, other["id"], at("2025-09-20T00:00:00"), bytes_up=17,
                        bytes_down=0) is True
        late.write()
        assert arranged.usage(active["id"], at("2025-09-21T00:00:00"), sms_mo=1) is True

    cycles = assert_cycles_match_days(backend.database, tenant.account_id)
    today = max(period for period, _ in cycles)
    assert cycles == {
        ("2025-08", active["id"]): (3, 0, 1, 0),
        ("2025-09", active["id"]): (MB + 6, MB + 8, 4, 2),
        ("2025-10", active["id"]): (11, 13, 0, 0),
        ("2025-09", other["id"]): (MB, 0, 0, 0),
        ("2025-10", other["id"]): (0, 2 * MB, 0, 0),
        ("2025-09", silent["id"]): (0, 0, 0, 0),
        (today, other["id"]): (17, 0, 0, 0),
        (today, active["id"]): (0, 0, 0, 1),
    }

    # The report reads the roll-up: its lines are the days' sums.
    september = by_thing(all_lines(tenant.admin, "2025-09"))
    assert {thing_id: (line["data_bytes"], line["sms_mt"], line["sms_mo"], line["total"])
            for thing_id, line in september.items()} == {
        active["id"]: (2 * MB + 14, 4, 2, "3.40"),  # fee 1 + 2 MB and 14 bytes 2.00 + 0.40
        other["id"]: (MB, 0, 0, "2.00"),
        silent["id"]: (0, 0, 0, "0.00")}

    # Worked out again from the days, set-based: the same rows.
    with backend.database.transaction() as session:
        assert rollups.rebuild(session, tenant.account_id) == len(cycles)
        assert cycles_and_days(session, tenant.account_id)[0] == cycles
