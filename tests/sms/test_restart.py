"""Queued MT messages live in the database, not in a server's memory: a message queued on one
server is delivered by the next one on the same database when the Thing attaches."""

from __future__ import annotations

import secrets

import httpx
from sms_helpers import active_thing, attach, send, transitions, wait_status


def test_queued_messages_survive_a_restart(start_live, tenant) -> None:
    first = start_live()
    client = httpx.Client(base_url=first.base_url, headers=tenant.admin.headers, timeout=30)
    thing = active_thing(tenant)
    queued = [send(client, thing["id"], text=f"queued before the restart {i}").json()["id"]
              for i in range(3)]
    first.stop()
    assert first.thread.server.should_exit and not first.thread.thread.is_alive()

    second = start_live()
    client = httpx.Client(base_url=second.base_url, headers=tenant.admin.headers, timeout=30)
    for sms_id in queued:
        assert client.get(f"/v1/sms/{sms_id}").json()["status"] == "QUEUED"
    attach(second.settings, thing, secrets.token_hex(8))
    for sms_id in queued:
        wait_status(client, sms_id, "DELIVERED")
        assert transitions(client, thing["id"], sms_id) == [
            (None, "QUEUED"), ("QUEUED", "SENT"), ("SENT", "DELIVERED")]
    client.close()
