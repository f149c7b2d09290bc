"""The built-in store-and-forward SMSC behind a running server: MT messages wait for the Thing's
data session (opened with real RADIUS packets), are delivered at once to an attached Thing,
expire after their validity, fail when the Thing may no longer use SMS, and are billed per
segment when they leave."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta

from billkit import assert_cycles_match_days
from sms_helpers import (
    active_thing,
    attach,
    detach,
    send,
    sms_events,
    transitions,
    wait_status,
)
from sqlalchemy import update

from simplane.models import SmsMessage
from simplane.sms.smsc import SmscWorker

DELIVERED = [(None, "QUEUED"), ("QUEUED", "SENT"), ("SENT", "DELIVERED")]


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def worker_pass(backend) -> None:
    """One full pass of an SMSC worker of the test's own: whatever it could do is done."""
    SmscWorker(backend.database).run_once()


def test_a_message_waits_for_the_attach_then_is_delivered(live, backend, tenant) -> None:
    thing = active_thing(tenant)
    assert thing["connection"]["status"] != "ATTACHED"
    message = send(tenant.admin, thing["id"], text="config v2").json()
    worker_pass(backend)
    waiting = tenant.admin.get(f"/v1/sms/{message['id']}").json()
    assert (waiting["status"], waiting["sent_at"], waiting["delivered_at"]) == ("QUEUED", None,
                                                                             None)
    assert transitions(tenant.admin, thing["id"], message["id"]) == [(None, "QUEUED")]

    attach(live.settings, thing, secrets.token_hex(8))
    assert tenant.admin.get(f"/v1/things/{thing['id']}").json()["connection"]["status"] \
        == "ATTACHED"
    delivered = wait_status(tenant.admin, message["id"], "DELIVERED")
    assert delivered["sent_at"] and delivered["delivered_at"] and delivered["error"] is None
    assert parse(message["created_at"]) <= parse(delivered["sent_at"]) \
        <= parse(delivered["delivered_at"])
    assert transitions(tenant.admin, thing["id"], message["id"]) == DELIVERED
    events = sms_events(tenant.admin, thing["id"], message["id"])
    assert all(e["thing_id"] == thing["id"] and e["data"]["direction"] == "MT" for e in events)


def test_an_attached_thing_gets_its_message_at_once_and_a_detached_one_at_its_next_attach(
        live, backend, tenant) -> None:
    thing = active_thing(tenant)
    session = secrets.token_hex(8)
    attach(live.settings, thing, session)
    now = send(tenant.admin, thing["id"], text="while attached").json()
    assert now["status"] == "QUEUED"  # accepted (202): the SMSC works asynchronously
    wait_status(tenant.admin, now["id"], "DELIVERED")
    assert transitions(tenant.admin, thing["id"], now["id"]) == DELIVERED

    detach(live.settings, thing, session)
    assert tenant.admin.get(f"/v1/things/{thing['id']}").json()["connection"]["status"] \
        != "ATTACHED"
    later = send(tenant.admin, thing["id"], data_base64="AQIDBA==").json()
    worker_pass(backend)
    assert tenant.admin.get(f"/v1/sms/{later['id']}").json()["status"] == "QUEUED"
    attach(live.settings, thing, secrets.token_hex(8))
    delivered = wait_status(tenant.admin, later["id"], "DELIVERED")
    assert (delivered["encoding"], delivered["data_base64"]) == ("BINARY", "AQIDBA==")
    assert transitions(tenant.admin, thing["id"], later["id"]) == DELIVERED


def test_a_message_expires_after_its_validity(live, backend, tenant) -> None:
    thing = active_thing(tenant)
    message = send(tenant.admin, thing["id"], text="too late", validity_seconds=60).json()
    created = parse(message["created_at"])
    with backend.database.transaction() as session:
        stored = session.get(SmsMessage, message["id"])
        assert stored is not None and stored.expires_at is not None
        assert abs((stored.expires_at - created).total_seconds() - 60) < 1
        # Instead of waiting out the minute, the validity ends now.
        session.execute(update(SmsMessage).where(SmsMessage.id == message["id"]).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    expired = wait_status(tenant.admin, message["id"], "EXPIRED")
    assert expired["sent_at"] is None and expired["delivered_at"] is None
    assert expired["error"]
    [event] = [e for e in sms_events(tenant.admin, thing["id"], message["id"])
               if e["data"]["to"] == "EXPIRED"]
    assert event["data"]["from"] == "QUEUED"
    assert transitions(tenant.admin, thing["id"], message["id"]) == [
        (None, "QUEUED"), ("QUEUED", "EXPIRED")]

    # Expired is final: a later attach delivers nothing, and nothing left, so nothing is billed.
    attach(live.settings, thing, secrets.token_hex(8))
    worker_pass(backend)
    assert tenant.admin.get(f"/v1/sms/{message['id']}").json()["status"] == "EXPIRED"
    usage = tenant.admin.get(f"/v1/things/{thing['id']}/usage").json()["items"]
    assert sum(day["sms_mt"] for day in usage) == 0


def test_a_message_fails_when_the_thing_may_no_longer_use_sms(live, backend, tenant) -> None:
    suspended, sms_off = active_thing(tenant), active_thing(tenant)
    first = send(tenant.admin, suspended["id"], text="a").json()
    second = send(tenant.admin, sms_off["id"], text="b").json()
    assert tenant.admin.patch(f"/v1/things/{suspended['id']}",
                              json={"state": "SUSPENDED"}).status_code == 200
    assert tenant.admin.patch(f"/v1/things/{sms_off['id']}",
                              json={"services": {"sms": False}}).status_code == 200
    for thing, message in ((suspended, first), (sms_off, second)):
        failed = wait_status(tenant.admin, message["id"], "FAILED")
        assert failed["error"] == "sms_not_allowed"
        assert failed["delivered_at"] is None
        assert transitions(tenant.admin, thing["id"], message["id"]) == [
            (None, "QUEUED"), ("QUEUED", "FAILED")]


def test_mt_segments_are_counted_when_sent(live, backend, tenant, network) -> None:
    thing = active_thing(tenant)
    usage = f"/v1/things/{thing['id']}/usage"
    queued = send(tenant.admin, thing["id"], text="a" * 161).json()  # 2 segments
    worker_pass(backend)
    assert sum(day["sms_mt"] for day in tenant.admin.get(usage).json()["items"]) == 0

    attach(live.settings, thing, secrets.token_hex(8))
    wait_status(tenant.admin, queued["id"], "DELIVERED")
    third = send(tenant.admin, thing["id"], text="Ж" * 135).json()  # 3 segments
    wait_status(tenant.admin, third["id"], "DELIVERED")
    assert network.post("/v1/network/sms", json={"imsi": thing["imsi"],
                                                 "text": "a" * 307}).status_code == 201
    [day] = tenant.admin.get(usage).json()["items"]
    assert day["date"] == datetime.now(UTC).date().isoformat()
    assert (day["sms_mt"], day["sms_mo"]) == (5, 3)
    cycles = assert_cycles_match_days(backend.database, tenant.account_id)
    assert [(mt, mo) for _, _, mt, mo in cycles.values()] == [(5, 3)]


def test_concurrent_workers_deliver_each_message_exactly_once(live, backend, tenant) -> None:
    thing = active_thing(tenant)
    sent = [send(tenant.admin, thing["id"], text=f"n{i}").json()["id"] for i in range(20)]
    attach(live.settings, thing, secrets.token_hex(8))
    # The server's own worker races three more, as several server processes would.
    workers = [threading.Thread(target=worker_pass, args=(backend,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    for sms_id in sent:
        wait_status(tenant.admin, sms_id, "DELIVERED")
    for sms_id in sent:
        assert transitions(tenant.admin, thing["id"], sms_id) == DELIVERED
    [day] = tenant.admin.get(f"/v1/things/{thing['id']}/usage").json()["items"]
    assert day["sms_mt"] == 20
