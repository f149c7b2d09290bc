"""The set-based ACTIVATE, SUSPEND and RETIRE give each Thing exactly what a single-Thing PATCH
gives its twin: every cell of the state table, for Things with an open session and a dynamic
lease and for Things holding a locked IP. Outcome, code and message; the Thing afterwards; its
history, events and webhook outbox rows (byte for byte what `webhooks.payload` makes of the
event); Disconnect-Requests; leases."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

import pytest
from bulkkit import items, run
from livekit import ship
from netkit import attach, locked
from sqlalchemy import func, select
from thingkit import bring_to, events_of

from simplane.core.ids import new_id
from simplane.models import DataSession, Event, IpLease, ThingStateChange, WebhookDelivery, utcnow
from simplane.webhooks.service import payload

STATES = ["PROVISIONED", "ACTIVE", "SUSPENDED", "RETIRED"]
ACTIONS = {"ACTIVATE": "ACTIVE", "SUSPEND": "SUSPENDED", "RETIRE": "RETIRED"}
# A RETIRED Thing holds no lease and no lock, and has no session to end.
VARIANTS = {state: ["plain"] if state == "RETIRED" else ["plain", "attached", "locked"]
            for state in STATES}


def _open_session(tenant: Any, thing_id: str) -> None:
    """What RADIUS accounting Start leaves behind."""
    with tenant.backend.database.transaction() as session:
        session.add(DataSession(
            id=new_id("session"), account_id=tenant.account_id, thing_id=thing_id,
            nas_address="127.0.0.1", acct_session_id=secrets.token_hex(8), imsi="001010000000001",
            status="OPEN", started_at=utcnow() - timedelta(minutes=5), last_update_at=utcnow()))


def _prepare(tenant: Any, from_state: str, variant: str) -> str:
    thing_id = ship(tenant, 1)[0]
    if variant == "locked":
        locked(tenant.admin, thing_id)
    bring_to(tenant.admin, thing_id, from_state)
    if variant == "attached":
        assert attach(tenant.backend, tenant.account_id, thing_id) is not None
        _open_session(tenant, thing_id)
    return thing_id


def _facts(tenant: Any, thing_id: str, seen_events: set[str]) -> dict[str, Any]:
    """Everything the change left on one Thing, with what differs between twins (ids, times,
    addresses, the history's source) left out."""
    thing = tenant.admin.get(f"/v1/things/{thing_id}").json()
    new_events = [e for e in events_of(tenant.admin, thing_id) if e["id"] not in seen_events]
    with tenant.backend.database.transaction(read_only=True) as session:
        history = session.execute(
            select(ThingStateChange.from_state, ThingStateChange.to_state,
                   ThingStateChange.actor_user_id)
            .where(ThingStateChange.thing_id == thing_id)
            .order_by(ThingStateChange.changed_at, ThingStateChange.id)).all()
        sessions = session.execute(
            select(DataSession.status, DataSession.disconnect_status,
                   DataSession.disconnect_reason, DataSession.disconnect_attempts)
            .where(DataSession.thing_id == thing_id)).all()
        leases = session.scalar(select(func.count()).where(IpLease.thing_id == thing_id))
        outbox = []
        for event in new_events:
            stored = session.get(Event, event["id"])
            rows = session.scalars(select(WebhookDelivery).where(
                WebhookDelivery.event_id == event["id"])).all()
            # Exactly the body the single-Thing path would have queued for this event.
            assert all(row.payload == payload(stored) for row in rows), (
                [row.payload for row in rows], payload(stored))
            outbox.append(sorted((row.event_type, row.status, row.attempts) for row in rows))
            body = json.loads(rows[0].payload) if rows else None
            if body is not None:
                assert body["data"] == event["data"] and body["thing_id"] == thing_id
    return {
        "state": thing["state"], "ip_locked": thing["ip_locked"],
        "ip_address": thing["ip_address"] is not None,
        "activated": thing["activated_at"] is not None,
        "events": [(e["type"], {k: v for k, v in e["data"].items()
                                if k not in ("ip_address",)}) for e in new_events],
        "history": [(h.from_state, h.to_state, h.actor_user_id) for h in history],
        "sessions": sorted(sessions), "leases": leases, "outbox": outbox,
    }


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_thing_gets_what_a_single_patch_gives_its_twin(tenant, action: str) -> None:
    to_state = ACTIONS[action]
    # Every event type, so the outbox holds a row per event of either path.
    hook = tenant.admin.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/never"})
    assert hook.status_code == 201, hook.text
    twins = [(from_state, variant, _prepare(tenant, from_state, variant),
              _prepare(tenant, from_state, variant))
             for from_state in STATES for variant in VARIANTS[from_state]]
    seen = {e["id"] for _, _, single, bulk in twins for e in events_of(tenant.admin, single)
            + events_of(tenant.admin, bulk)}
    singles = {single: tenant.admin.patch(f"/v1/things/{single}", json={"state": to_state})
               for _, _, single, _ in twins}
    job = run(tenant.admin, {"action": action,
                             "target": {"thing_ids": [bulk for *_, bulk in twins]}})
    assert job["status"] == "COMPLETED" and job["total"] == len(twins)
    outcomes = {i["thing_id"]: i for i in items(tenant.admin, job["id"])}

    for from_state, variant, single, bulk in twins:
        cell = f"{from_state} -> {to_state} ({variant})"
        response, item = singles[single], outcomes[bulk]
        if response.status_code == 200:
            assert (item["status"], item["code"], item["detail"]) == ("SUCCEEDED", None, None), cell
        else:
            problem = response.json()
            assert (item["status"], item["code"], item["detail"]) == (
                "FAILED", problem["code"], problem["detail"]), cell
        expected = _facts(tenant, single, seen)
        got = _facts(tenant, bulk, seen)
        # The delivery worker may already have tried the single path's (older) rows.
        for facts in (expected, got):
            facts["outbox"] = [[row[0] for row in rows] for rows in facts["outbox"]]
        assert got == expected, cell
    assert job["succeeded"] == sum(r.status_code == 200 for r in singles.values())
    assert job["failed"] == sum(r.status_code != 200 for r in singles.values())
