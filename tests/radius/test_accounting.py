"""Accounting (RFC 2866 as TS 29.061 uses it): sessions, usage from cumulative counters, daily
buckets, Accounting-On/Off, the lease clock and retransmissions."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest

from radius_helpers import (
    UdpClient,
    access_attributes,
    accounting_attributes,
    decode_reply,
    default_pool,
    encode_accounting,
    events_of,
    get_thing,
    new_session_id,
    pyrad_values,
    radclient,
    sessions_of,
)
from billkit import assert_cycles_match_days
from pyrad import packet as rp
from sqlalchemy import select

from simplane.models import IpLease

GIGA = 2**32


def attach(radius, imsi: str) -> str:  # type: ignore[no-untyped-def]
    run = radclient(radius.auth_port, "auth", access_attributes(imsi))
    assert run.reply is not None and run.reply.code == "Access-Accept", str(run)
    return run.reply.get("Framed-IP-Address")  # type: ignore[return-value]


def account(radius, imsi: str, status: str, session_id: str, **attributes: object) -> None:  # type: ignore[no-untyped-def]
    run = radclient(radius.acct_port, "acct",
                    accounting_attributes(imsi, status, session_id, **attributes))
    assert run.reply is not None and run.reply.code == "Accounting-Response", str(run)


def usage(client, thing_id: str, **params: str) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get(f"/v1/things/{thing_id}/usage", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def counters(up: int, down: int) -> dict[str, int]:
    return {"Acct-Input-Octets": up % GIGA, "Acct-Input-Gigawords": up // GIGA,
            "Acct-Output-Octets": down % GIGA, "Acct-Output-Gigawords": down // GIGA}


def other_nas() -> str:
    # A NAS address of the test's own, so Accounting-On/Off touch only its sessions.
    return f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def test_a_session_from_start_to_stop_with_usage_and_connection_state(
        radius, backend, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    address = attach(radius, thing["imsi"])
    session_id = new_session_id()

    account(radius, thing["imsi"], "Start", session_id, **{"Framed-IP-Address": address})
    shown = get_thing(tenant.admin, thing["id"])
    assert shown["connection"]["status"] == "ATTACHED", shown
    assert (shown["connection"]["rat"], shown["connection"]["country"],
            shown["connection"]["operator"]) == ("4G", "NL", "20408")
    (open_session,) = sessions_of(tenant.admin, thing["id"])
    assert shown["connection"]["session_id"] == open_session["id"]
    assert (open_session["status"], open_session["acct_session_id"],
            open_session["ip_address"]) == ("OPEN", session_id, address)
    attached = events_of(tenant.admin, thing["id"], "thing.attached")
    assert len(attached) == 1 and attached[0]["data"]["ip_address"] == address

    account(radius, thing["imsi"], "Interim-Update", session_id, **counters(1000, 5000))
    assert sessions_of(tenant.admin, thing["id"])[0]["bytes_down"] == 5000
    # The gigawords carry the counters past 4 GiB.
    account(radius, thing["imsi"], "Interim-Update", session_id,
            **counters(GIGA + 3000, 2 * GIGA + 7))
    final_up, final_down = GIGA + 4000, 2 * GIGA + 9000
    account(radius, thing["imsi"], "Stop", session_id, **counters(final_up, final_down),
            **{"Acct-Terminate-Cause": "User-Request"})

    (closed,) = sessions_of(tenant.admin, thing["id"])
    assert (closed["status"], closed["bytes_up"], closed["bytes_down"]) == (
        "CLOSED", final_up, final_down), closed
    assert closed["ended_at"] is not None and closed["terminate_cause"] == "user_request"
    (today,) = usage(tenant.admin, thing["id"])
    assert (today["bytes_up"], today["bytes_down"]) == (final_up, final_down), today
    assert today["date"] == datetime.now(UTC).date().isoformat()

    shown = get_thing(tenant.admin, thing["id"])
    assert shown["connection"]["status"] == "DETACHED", shown
    assert shown["connection"]["session_id"] is None
    detached = events_of(tenant.admin, thing["id"], "thing.detached")
    assert len(detached) == 1 and detached[0]["data"]["session_id"] == closed["id"]

    # Stop starts the dynamic lease's clock; the Thing still shows its address.
    assert shown["ip_address"] == address
    with backend.database.transaction(read_only=True) as session:
        lease = session.scalar(select(IpLease).where(IpLease.thing_id == thing["id"]))
        assert lease is not None and lease.kind == "DYNAMIC"
        assert lease.expires_at is not None
        lease_seconds = default_pool(tenant.admin)["lease_seconds"]
        remaining = (lease.expires_at - datetime.now(UTC)).total_seconds()
        assert lease_seconds - 60 < remaining <= lease_seconds, (remaining, lease_seconds)


def test_a_locked_ip_never_gets_an_expiry(radius, backend, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    response = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"ip_lock": {"locked": True}})
    assert response.status_code == 200, response.text
    address = attach(radius, thing["imsi"])
    assert address == response.json()["ip_address"]
    session_id = new_session_id()
    account(radius, thing["imsi"], "Start", session_id)
    account(radius, thing["imsi"], "Stop", session_id)
    with backend.database.transaction(read_only=True) as session:
        lease = session.scalar(select(IpLease).where(IpLease.thing_id == thing["id"]))
        assert lease is not None and (lease.kind, lease.expires_at) == ("LOCKED", None)


def test_usage_is_attributed_to_the_day_of_the_event_timestamp(radius, backend, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    today = datetime.now(UTC).date()
    three_days_ago = datetime.combine(today - timedelta(days=3), datetime.min.time(), UTC)
    yesterday = three_days_ago + timedelta(days=2)
    session_id = new_session_id()

    def stamp(moment: datetime) -> dict[str, object]:
        return {"Event-Timestamp": int(moment.timestamp())}

    account(radius, thing["imsi"], "Start", session_id, **stamp(three_days_ago + timedelta(hours=9)))
    account(radius, thing["imsi"], "Interim-Update", session_id, **counters(100, 200),
            **stamp(three_days_ago + timedelta(hours=23, minutes=59)))
    account(radius, thing["imsi"], "Interim-Update", session_id, **counters(350, 700),
            **stamp(yesterday + timedelta(minutes=1)))

    days = usage(tenant.admin, thing["id"], **{"from": (today - timedelta(days=5)).isoformat(),
                                               "to": today.isoformat()})
    assert [(d["date"], d["bytes_up"], d["bytes_down"]) for d in days] == [
        ((today - timedelta(days=3)).isoformat(), 100, 200),
        ((today - timedelta(days=1)).isoformat(), 250, 500)], days
    (record,) = sessions_of(tenant.admin, thing["id"])
    assert record["started_at"].startswith((today - timedelta(days=3)).isoformat())
    # A range that ends before yesterday leaves yesterday's bucket out.
    assert len(usage(tenant.admin, thing["id"], to=(today - timedelta(days=2)).isoformat())) == 1
    # The per-cycle roll-up the report reads got the same increments.
    cycles = assert_cycles_match_days(backend.database, tenant.account_id)
    assert sum(up + down for up, down, _, _ in cycles.values()) == 350 + 700


def test_accounting_on_and_off_close_the_open_sessions_of_that_nas(
        radius, tenant, active_things):  # type: ignore[no-untyped-def]
    rebooting, elsewhere, later = active_things(3)
    nas, other = other_nas(), other_nas()
    first, second = new_session_id(), new_session_id()
    account(radius, rebooting["imsi"], "Start", first, **{"NAS-IP-Address": nas})
    account(radius, rebooting["imsi"], "Interim-Update", first, **{"NAS-IP-Address": nas},
            **counters(10, 20))
    account(radius, elsewhere["imsi"], "Start", second, **{"NAS-IP-Address": other})

    run = radclient(radius.acct_port, "acct", {"Acct-Status-Type": "Accounting-On",
                                               "NAS-IP-Address": nas,
                                               "Acct-Session-Id": "0"})
    assert run.reply is not None and run.reply.code == "Accounting-Response", str(run)

    (closed,) = sessions_of(tenant.admin, rebooting["id"])
    assert closed["status"] == "CLOSED" and closed["terminate_cause"] == "nas_reboot", closed
    assert (closed["bytes_up"], closed["bytes_down"]) == (10, 20)
    assert get_thing(tenant.admin, rebooting["id"])["connection"]["status"] == "DETACHED"
    assert sessions_of(tenant.admin, elsewhere["id"])[0]["status"] == "OPEN"
    assert get_thing(tenant.admin, elsewhere["id"])["connection"]["status"] == "ATTACHED"

    third = new_session_id()
    account(radius, later["imsi"], "Start", third, **{"NAS-IP-Address": other})
    run = radclient(radius.acct_port, "acct", {"Acct-Status-Type": "Accounting-Off",
                                               "NAS-IP-Address": other,
                                               "Acct-Session-Id": "0"})
    assert run.reply is not None and run.reply.code == "Accounting-Response", str(run)
    for thing in (elsewhere, later):
        assert [s["status"] for s in sessions_of(tenant.admin, thing["id"])] == ["CLOSED"]
        assert get_thing(tenant.admin, thing["id"])["connection"]["status"] == "DETACHED"
        assert len(events_of(tenant.admin, thing["id"], "thing.detached")) == 1


def test_a_retransmitted_accounting_packet_is_answered_each_time_and_counted_once(
        radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    session_id = new_session_id()
    account(radius, thing["imsi"], "Start", session_id)
    interim = encode_accounting(pyrad_values(accounting_attributes(
        thing["imsi"], "Interim-Update", session_id, **counters(4000, 9000))))
    raw = interim.RequestPacket()

    with UdpClient() as nas:
        answers = [nas.exchange(raw, radius.acct_port) for _ in range(3)]
        # The same counters again as a new packet (RFC 2866: a changed Acct-Delay-Time makes
        # a retransmission a new packet): still nothing to add.
        delayed = encode_accounting(pyrad_values(accounting_attributes(
            thing["imsi"], "Interim-Update", session_id, **counters(4000, 9000),
            **{"Acct-Delay-Time": 5})))
        delayed_answer = nas.exchange(delayed.RequestPacket(), radius.acct_port)

    assert all(a is not None for a in answers) and answers[1:] == answers[:1] * 2
    assert decode_reply(interim, answers[0]).code == rp.AccountingResponse
    assert delayed_answer is not None
    assert decode_reply(delayed, delayed_answer).code == rp.AccountingResponse
    (today,) = usage(tenant.admin, thing["id"])
    assert (today["bytes_up"], today["bytes_down"]) == (4000, 9000), today
    assert sessions_of(tenant.admin, thing["id"])[0]["bytes_up"] == 4000


def test_the_same_counters_reported_again_add_nothing(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    # A NAS that lost the answer may report the same counters in a fresh packet (new
    # identifier): usage is the increase since the last record, so nothing is added.
    (thing,) = active_things(1)
    session_id = new_session_id()
    account(radius, thing["imsi"], "Start", session_id)
    attributes = accounting_attributes(thing["imsi"], "Interim-Update", session_id,
                                       **counters(123, 456))
    runs = [radclient(radius.acct_port, "acct", attributes) for _ in range(3)]
    assert all(r.reply is not None and r.reply.code == "Accounting-Response" for r in runs)
    (today,) = usage(tenant.admin, thing["id"])
    assert (today["bytes_up"], today["bytes_down"]) == (123, 456), today


def test_an_accounting_request_with_a_wrong_secret_is_dropped(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    run = radclient(radius.acct_port, "acct", accounting_attributes(
        thing["imsi"], "Start", new_session_id()), secret="wrong", timeout=1, retries=1)
    assert run.replies == [], str(run)
    assert sessions_of(tenant.admin, thing["id"]) == []


def test_events_of_accounting_and_access_queue_deliveries_for_the_accounts_enabled_webhooks(
        radius, backend, tenant, other_tenant, active_things):  # type: ignore[no-untyped-def]
    """A batch reads its account's enabled webhooks with its Things (PostgreSQL) or asks for
    them (SQLite): either way, each event it raises gets one outbox row per enabled webhook of
    that account that takes its type, and a webhook made between two batches takes the next."""
    from simplane.models import WebhookDelivery

    def webhook(client, **body: object) -> str:  # type: ignore[no-untyped-def]
        response = client.post("/v1/webhooks", json={"url": "https://hooks.example.com/in",
                                                      **body})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    (thing,) = active_things(1)
    everything = webhook(tenant.admin)
    detaching = webhook(tenant.admin, event_types=["thing.detached"])
    webhook(tenant.admin, enabled=False)
    webhook(other_tenant.admin)
    # The first attach with an IMEI records it: thing.imei_changed, raised by the access batch.
    run = radclient(radius.auth_port, "auth",
                    access_attributes(thing["imsi"], **{"3GPP-IMEISV": "3569380356438091"}))
    assert run.reply is not None and run.reply.code == "Access-Accept", str(run)
    address = run.reply.get("Framed-IP-Address")
    session_id = new_session_id()
    account(radius, thing["imsi"], "Start", session_id, **{"Framed-IP-Address": address})
    later = webhook(tenant.admin, event_types=["thing.detached", "thing.attached"])
    account(radius, thing["imsi"], "Stop", session_id, **counters(10, 20))

    with backend.database.transaction(read_only=True) as session:
        queued = sorted((d.webhook_id, d.event_type) for d in session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.account_id.in_(
                [tenant.account_id, other_tenant.account_id]))))
    assert queued == sorted([
        (everything, "thing.imei_changed"), (everything, "thing.attached"),
        (everything, "thing.detached"), (detaching, "thing.detached"),
        (later, "thing.detached")])


def test_usage_waits_for_an_exclusive_holder_of_the_usage_lock_and_starts_do_not(
        radius, backend, tenant, active_things):  # type: ignore[no-untyped-def]
    """A cycle being closed or a usage import holds the usage writers' lock exclusively
    (PostgreSQL: an advisory lock; SQLite's single writer needs none). Meanwhile a Start is
    recorded at once, and an Interim-Update's usage waits and then counts."""
    import threading

    from simplane.billing.closing import CLOSE_LOCK
    from simplane.core.db import advisory_lock

    if backend.name != "postgresql":
        pytest.skip("an advisory lock is PostgreSQL's; SQLite serialises every writer")
    (thing,) = active_things(1)
    address = attach(radius, thing["imsi"])
    session_id = new_session_id()
    replies: list[object] = []
    with backend.database.transaction() as holder:
        advisory_lock(holder, CLOSE_LOCK)
        account(radius, thing["imsi"], "Start", session_id, **{"Framed-IP-Address": address})
        assert sessions_of(tenant.admin, thing["id"])[0]["status"] == "OPEN"
        waiting = threading.Thread(target=lambda: replies.append(radclient(
            radius.acct_port, "acct", accounting_attributes(
                thing["imsi"], "Interim-Update", session_id, **counters(100, 200)),
            retries=3, timeout=3)))
        waiting.start()
        time.sleep(1.5)
        assert sessions_of(tenant.admin, thing["id"])[0]["bytes_down"] == 0
        assert replies == []
    waiting.join()
    (run,) = replies
    assert run.reply is not None and run.reply.code == "Accounting-Response", str(run)
    assert sessions_of(tenant.admin, thing["id"])[0]["bytes_down"] == 200
    assert [(d["bytes_up"], d["bytes_down"]) for d in usage(tenant.admin, thing["id"])] == [
        (100, 200)]
