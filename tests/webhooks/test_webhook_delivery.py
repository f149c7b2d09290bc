"""Deliveries to local receivers: signatures, retries with one id, filters, disable, delete and
restart."""

from __future__ import annotations

import time

from hookkit import change_state, deliveries, receiving, subscribe
from livekit import ship, wait_for
from sqlalchemy import select

from simplane.events.service import emit
from simplane.models import Event

# Retries come after 0.2 s, 0.4 s, 0.8 s ...; nothing is given up within a test.
SERVER_SETTINGS = {"webhook_retry_base_seconds": 0.2, "webhook_timeout_seconds": 2,
                   "webhook_retry_max_age_seconds": 600}


def test_receiver_verifies_the_signature_of_each_event(tenant) -> None:
    thing_id = ship(tenant, 1)[0]
    with receiving() as receiver:
        webhook = subscribe(tenant.admin, receiver)
        assert webhook["secret"].startswith("whsec_") and len(webhook["secret"]) >= 40
        change_state(tenant.admin, thing_id, "ACTIVE")
        got = wait_for(lambda: receiver.got, what="the delivery")[0]
        assert got.verified
        event = tenant.admin.get("/v1/events", params={"thing_id": thing_id}).json()["items"][0]
        assert got.json == {"id": event["id"], "type": "thing.state_changed",
                            "occurred_at": event["occurred_at"],
                            "account_id": tenant.account_id, "thing_id": thing_id,
                            "data": event["data"]}
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["Simplane-Event-Id"] == event["id"]
        t, v1 = (part.split("=", 1)[1] for part in got.headers["Simplane-Signature"].split(","))
        assert abs(int(t) - time.time()) < 60 and len(v1) == 64

        # The receiver's check can fail: another secret, or a body changed on the way.
        from simplane.webhooks.service import verify

        signature = got.headers["Simplane-Signature"]
        assert not verify("whsec_wrong", got.body, signature)
        assert not verify(receiver.secret, got.body.replace(b"ACTIVE", b"RETIRE"), signature)
        assert not verify(receiver.secret, got.body, signature, tolerance_seconds=-1)

        log = wait_for(lambda: [d for d in deliveries(tenant.admin, webhook["id"])
                                if d["status"] == "DELIVERED"], what="the delivery log")
        assert [(d["event_id"], d["attempts"], d["last_status_code"]) for d in log] == [
            (event["id"], 1, 200)]

        # A secret chosen by the client, then rotated: each delivery is signed with the current one.
        rotated = tenant.admin.patch(f"/v1/webhooks/{webhook['id']}",
                                     json={"secret": "my-own-secret-0123456789"})
        assert rotated.status_code == 200 and "secret" not in rotated.json()
        receiver.secret = "my-own-secret-0123456789"
        change_state(tenant.admin, thing_id, "SUSPENDED")
        assert wait_for(lambda: len(receiver.got) == 2 and receiver.got)[1].verified


def test_receiver_failing_twice_gets_the_event_three_times_with_one_id(tenant) -> None:
    thing_id = ship(tenant, 1)[0]
    with receiving([500, 503]) as receiver:
        webhook = subscribe(tenant.admin, receiver, event_types=["thing.state_changed"])
        change_state(tenant.admin, thing_id, "ACTIVE")
        wait_for(lambda: receiver.count() >= 3, what="three attempts")
        log = wait_for(lambda: [d for d in deliveries(tenant.admin, webhook["id"])
                                if d["status"] == "DELIVERED"], what="DELIVERED")
        time.sleep(0.5)  # no fourth attempt follows the success
        got = receiver.got
    assert len(got) == 3
    assert len({d.json["id"] for d in got}) == 1 and len({d.body for d in got}) == 1
    assert [d.headers["Simplane-Delivery-Attempt"] for d in got] == ["1", "2", "3"]
    assert all(d.verified for d in got)
    assert [(d["attempts"], d["last_status_code"], d["last_error"]) for d in log] == [
        (3, 200, None)]
    assert log[0]["event_id"] == got[0].json["id"]


def test_event_types_filter_what_each_webhook_gets(tenant, other_tenant) -> None:
    thing_id = ship(tenant, 1)[0]
    foreign = ship(other_tenant, 1)
    with receiving() as everything, receiving() as states, receiving() as bulk, \
            receiving() as theirs:
        subscribe(tenant.admin, everything)
        subscribe(tenant.admin, states, event_types=["thing.state_changed", "sms.received"])
        subscribe(tenant.admin, bulk, event_types=["bulk_action.finished"])
        subscribe(other_tenant.admin, theirs)
        change_state(tenant.admin, thing_id, "ACTIVE")
        # Another account's ids only: the job finishes at once with bulk_action.finished.
        job = tenant.admin.post("/v1/bulk-actions", json={
            "action": "RETIRE", "target": {"thing_ids": foreign}})
        assert job.status_code == 202, job.text
        wait_for(lambda: everything.count() == 2 and states.count() and bulk.count(),
                 what="the deliveries")
        time.sleep(0.5)  # nothing else is on its way
        assert sorted(d.json["type"] for d in everything.got) == [
            "bulk_action.finished", "thing.state_changed"]
        assert [d.json["type"] for d in states.got] == ["thing.state_changed"]
        assert [d.json["data"]["bulk_action_id"] for d in bulk.got] == [job.json()["id"]]
        assert theirs.got == []


def test_a_bulk_state_change_delivers_one_signed_event_per_thing(tenant) -> None:
    """The set-based bulk path queues what the single-Thing path would: one delivery per Thing
    and subscribed webhook, with the event's id and body."""
    ids = ship(tenant, 40)
    with receiving() as everything, receiving() as states, receiving() as other:
        subscribe(tenant.admin, everything)
        subscribe(tenant.admin, states, event_types=["thing.state_changed"])
        subscribe(tenant.admin, other, event_types=["sms.received"])
        job = tenant.admin.post("/v1/bulk-actions", json={
            "action": "ACTIVATE", "target": {"thing_ids": ids}})
        assert job.status_code == 202, job.text
        wait_for(lambda: everything.count() == 41 and states.count() == 40,
                 timeout=60, what="the deliveries")
        time.sleep(0.5)  # nothing else is on its way
        events = {e["id"]: e for e in tenant.admin.get("/v1/events", params={
            "type": "thing.state_changed", "limit": 1000}).json()["items"]}
        for receiver in (everything, states):
            got = receiver.of_type("thing.state_changed")
            assert all(d.verified for d in got)
            assert sorted(d.json["thing_id"] for d in got) == sorted(ids)
            for delivery in got:
                event = events[delivery.json["id"]]
                assert delivery.json == {
                    "id": event["id"], "type": "thing.state_changed",
                    "occurred_at": event["occurred_at"], "account_id": tenant.account_id,
                    "thing_id": event["thing_id"],
                    "data": {"from": "PROVISIONED", "to": "ACTIVE",
                             "actor_user_id": tenant.admin_user_id}}
                assert delivery.headers["Simplane-Event-Id"] == event["id"]
        assert [d.json["type"] for d in everything.got if d.json["type"] != "thing.state_changed"
                ] == ["bulk_action.finished"]
        assert other.got == []


def test_disabling_a_webhook_stops_its_retries_at_once(tenant) -> None:
    thing_id = ship(tenant, 1)[0]
    with receiving(then=500) as receiver:
        webhook = subscribe(tenant.admin, receiver)
        change_state(tenant.admin, thing_id, "ACTIVE")
        wait_for(lambda: receiver.count() >= 1, what="a first attempt")
        response = tenant.admin.patch(f"/v1/webhooks/{webhook['id']}", json={"enabled": False})
        assert response.status_code == 200 and response.json()["enabled"] is False
        time.sleep(0.5)  # an attempt already on the wire may still land
        seen = receiver.count()
        change_state(tenant.admin, thing_id, "SUSPENDED")
        # Enabled, retries would come after 0.2, 0.4 and 0.8 s: three within this wait.
        time.sleep(2)
        assert receiver.count() == seen
        log = deliveries(tenant.admin, webhook["id"])
        assert [d["status"] for d in log] == ["PENDING"]  # no delivery for the new event


def test_deleting_a_webhook_stops_its_retries_at_once(tenant) -> None:
    thing_id = ship(tenant, 1)[0]
    with receiving(then=500) as receiver:
        webhook = subscribe(tenant.admin, receiver)
        change_state(tenant.admin, thing_id, "ACTIVE")
        wait_for(lambda: receiver.count() >= 1, what="a first attempt")
        assert tenant.admin.delete(f"/v1/webhooks/{webhook['id']}").status_code == 204
        time.sleep(0.5)
        seen = receiver.count()
        change_state(tenant.admin, thing_id, "SUSPENDED")
        time.sleep(2)
        assert receiver.count() == seen
        assert tenant.admin.get(f"/v1/webhooks/{webhook['id']}/deliveries").status_code == 404


def test_pending_deliveries_survive_a_restart(live, tenant) -> None:
    thing_id = ship(tenant, 1)[0]
    with receiving(then=500) as receiver:
        webhook = subscribe(tenant.admin, receiver)
        change_state(tenant.admin, thing_id, "ACTIVE")
        wait_for(lambda: receiver.count() >= 1, what="a first, refused attempt")
        live.stop()
        # While no server runs: the receiver recovers, and another event is recorded.
        receiver.then = 200
        with tenant.backend.database.transaction() as session:
            emit(session, tenant.account_id, "thing.ip_locked", thing_id=thing_id,
                 data={"ip_address": "10.0.0.9"})
        with tenant.backend.database.transaction(read_only=True) as session:
            event_ids = set(session.scalars(select(Event.id).where(
                Event.account_id == tenant.account_id)))
        before = receiver.count()
        time.sleep(0.5)
        assert receiver.count() == before  # nothing sends while stopped

        live.start()
        log = wait_for(lambda: (log := deliveries(tenant.admin, webhook["id"]))
                       and all(d["status"] == "DELIVERED" for d in log) and log,
                       what="both deliveries after the restart")
    assert {d["event_id"] for d in log} == event_ids and len(log) == 2
    assert {d.json["id"] for d in receiver.got if d.verified} == event_ids


def test_each_thing_of_a_bulk_action_is_delivered_once(tenant) -> None:
    ids = ship(tenant, 3)
    with receiving() as receiver:
        subscribe(tenant.admin, receiver, event_types=["thing.state_changed"])
        job = tenant.admin.post("/v1/bulk-actions", json={
            "action": "ACTIVATE", "target": {"thing_ids": ids}})
        assert job.status_code == 202, job.text
        wait_for(lambda: receiver.count() >= 3, what="one delivery per Thing")
        time.sleep(0.5)  # and no more
        got = receiver.got
    assert sorted(d.json["thing_id"] for d in got) == sorted(ids)
    assert len({d.json["id"] for d in got}) == 3 and all(d.verified for d in got)
    assert {d.json["data"]["to"] for d in got} == {"ACTIVE"}
