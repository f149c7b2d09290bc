"""Ten thousand Things activated by tag: exact counts, events and state history."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

from bulkkit import events, finished, items, run, submit, tag_all
from livekit import ship
from sqlalchemy import func, select

from simplane.models import Thing, ThingStateChange

SIZE = 10_000
STATE_BATCH = None  # the engine's own batch size (bulk.service.STATE_BATCH_SIZE)


def test_ten_thousand_things_activated_by_tag_with_exact_failures(tenant) -> None:
    ids = ship(tenant, SIZE)
    tag_all(tenant, "fleet")
    untagged = ship(tenant, 25)  # in the account, outside the target
    chosen = random.Random(7).sample(ids, 300)
    retired, already_active, suspended = chosen[:150], chosen[150:250], chosen[250:]
    admin = tenant.admin
    assert run(admin, {"action": "RETIRE", "target": {"thing_ids": retired}})["succeeded"] == 150
    assert run(admin, {"action": "ACTIVATE",
                       "target": {"thing_ids": already_active + suspended}})["succeeded"] == 150
    assert run(admin, {"action": "SUSPEND", "target": {"thing_ids": suspended}})["succeeded"] == 50

    dry = submit(admin, {"action": "ACTIVATE", "target": {"tags": {"all": ["fleet"]}},
                         "dry_run": True})
    assert (dry["status"], dry["total"], dry["processed"]) == ("COMPLETED", SIZE, 0)

    created = submit(admin, {"action": "ACTIVATE", "target": {"tags": {"all": ["fleet"]}}})
    assert (created["status"], created["total"], created["dry_run"]) == ("QUEUED", SIZE, False)
    job = finished(admin, created["id"])
    assert {k: job[k] for k in ("status", "total", "processed", "succeeded", "failed")} == {
        "status": "COMPLETED", "total": SIZE, "processed": SIZE, "succeeded": SIZE - 150,
        "failed": 150}
    assert job["started_at"] and job["finished_at"] >= job["started_at"]

    # The failures, page by page: exactly the RETIRED Things, each with the single-Thing code.
    failed = items(admin, job["id"], "FAILED", limit=100)
    assert sorted(i["thing_id"] for i in failed) == sorted(retired)
    assert {(i["status"], i["code"]) for i in failed} == {("FAILED", "invalid_state_transition")}
    assert all("RETIRED" in i["detail"] for i in failed)
    assert len(items(admin, job["id"], "SUCCEEDED")) == SIZE - 150
    assert items(admin, job["id"], "PENDING") == []

    with tenant.backend.database.transaction(read_only=True) as session:
        states = dict(session.execute(select(Thing.state, func.count()).where(
            Thing.account_id == tenant.account_id).group_by(Thing.state)).all())
        history = session.execute(select(ThingStateChange.thing_id, ThingStateChange.from_state,
                                         ThingStateChange.source,
                                         ThingStateChange.actor_user_id).where(
            ThingStateChange.account_id == tenant.account_id,
            ThingStateChange.to_state == "ACTIVE",
            ThingStateChange.changed_at >= datetime.fromisoformat(job["started_at"]))).all()
    assert states == {"ACTIVE": SIZE - 150, "RETIRED": 150, "PROVISIONED": len(untagged)}

    # Already-ACTIVE Things succeed without a change; every other Thing changed exactly once.
    changed = set(ids) - set(retired) - set(already_active)
    per_thing = Counter(row.thing_id for row in history)
    assert set(per_thing) == changed and set(per_thing.values()) == {1}
    assert {(row.source, row.actor_user_id) for row in history} == {("bulk", tenant.admin_user_id)}
    assert Counter(row.from_state for row in history) == {"PROVISIONED": len(changed) - 50,
                                                          "SUSPENDED": 50}

    emitted = events(admin, "thing.state_changed", since=created["created_at"])
    per_thing = Counter(e["thing_id"] for e in emitted)
    assert set(per_thing) == changed and set(per_thing.values()) == {1}
    assert {e["data"]["to"] for e in emitted} == {"ACTIVE"}

    done = [e for e in events(admin, "bulk_action.finished")
            if e["data"]["bulk_action_id"] == job["id"]]
    assert len(done) == 1
    assert {k: done[0]["data"][k] for k in ("action", "status", "total", "succeeded", "failed")} \
        == {"action": "ACTIVATE", "status": "COMPLETED", "total": SIZE,
            "succeeded": SIZE - 150, "failed": 150}
