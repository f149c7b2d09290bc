"""Every bulk action and target kind, dry runs, idempotency, cancel, validation and tenancy."""

from __future__ import annotations

from typing import Any

import pytest
from bulkkit import events, finished, items, job_of, run, submit, thing
from livekit import field_names, problem, ship, wait_for

ACTIVATE_ALL = {"action": "ACTIVATE", "target": {"filter": {}}}


def _states(client, ids: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    return [thing(client, i)["state"] for i in ids]


def test_thing_ids_of_another_account_or_unknown_fail_as_not_found(tenant, other_tenant) -> None:
    own = ship(tenant, 4)
    foreign = ship(other_tenant, 2)
    unknown = "thg_0000000000000000000000000000"
    created = submit(tenant.admin, {"action": "ACTIVATE",
                                    "target": {"thing_ids": [*own, *foreign, unknown, own[0]]}})
    # Repeated ids count once; ids the account does not have fail at once, before any work.
    assert (created["total"], created["processed"], created["failed"]) == (7, 3, 3)
    job = finished(tenant.admin, created["id"])
    assert {k: job[k] for k in ("status", "processed", "succeeded", "failed")} == {
        "status": "COMPLETED", "processed": 7, "succeeded": 4, "failed": 3}
    failed = items(tenant.admin, job["id"], "FAILED")
    assert sorted(i["thing_id"] for i in failed) == sorted([*foreign, unknown])
    assert {i["code"] for i in failed} == {"not_found"}
    assert sorted(i["thing_id"] for i in items(tenant.admin, job["id"], "SUCCEEDED")) == sorted(own)
    assert _states(tenant.admin, own) == ["ACTIVE"] * 4
    assert _states(other_tenant.admin, foreign) == ["PROVISIONED"] * 2

    history = tenant.admin.get(f"/v1/things/{own[0]}/state-history").json()["items"]
    assert [(h["to_state"], h["source"], h["actor_user_id"]) for h in history][-1] == (
        "ACTIVE", "bulk", tenant.admin_user_id)

    assert run(tenant.admin, {"action": "SUSPEND", "target": {"thing_ids": own[:2]}})[
        "succeeded"] == 2
    assert run(tenant.admin, {"action": "RETIRE", "target": {"thing_ids": own[1:3]}})[
        "succeeded"] == 2
    assert _states(tenant.admin, own) == ["SUSPENDED", "RETIRED", "RETIRED", "ACTIVE"]
    # Another account never sees these Things' events.
    assert events(other_tenant.admin, "thing.state_changed") == []


def test_only_foreign_ids_finish_at_once_with_the_finished_event(tenant, other_tenant) -> None:
    foreign = ship(other_tenant, 2)
    created = submit(tenant.admin, {"action": "RETIRE", "target": {"thing_ids": foreign}})
    assert {k: created[k] for k in ("status", "total", "processed", "failed")} == {
        "status": "COMPLETED", "total": 2, "processed": 2, "failed": 2}
    done = events(tenant.admin, "bulk_action.finished")
    assert [(e["data"]["bulk_action_id"], e["data"]["status"], e["data"]["failed"])
            for e in done] == [(created["id"], "COMPLETED", 2)]


def test_tags_all_and_any_targets_and_tag_actions(tenant) -> None:
    a, b, c, d = ship(tenant, 4)
    added = run(tenant.admin, {"action": "ADD_TAGS", "target": {"thing_ids": [a, b]},
                               "params": {"tags": ["north", "pump"]}})
    assert added["succeeded"] == 2
    run(tenant.admin, {"action": "ADD_TAGS", "target": {"thing_ids": [b, c]},
                       "params": {"tags": ["pump", "meter"]}})
    tags = {i: thing(tenant.admin, i)["tags"] for i in (a, b, c, d)}
    assert tags == {a: ["north", "pump"], b: ["meter", "north", "pump"], c: ["meter", "pump"],
                    d: []}

    def count(target: dict[str, Any]) -> int:
        return submit(tenant.admin, {**ACTIVATE_ALL, "target": {"tags": target},
                                     "dry_run": True})["total"]

    assert count({"all": ["north", "pump"]}) == 2
    assert count({"all": ["north", "meter"]}) == 1
    assert count({"any": ["north", "meter"]}) == 3
    assert count({"any": ["nowhere"]}) == 0

    job = run(tenant.admin, {"action": "SUSPEND", "target": {"tags": {"any": ["meter"]}}})
    # PROVISIONED cannot be SUSPENDED: both targeted Things fail, with the single-Thing code.
    assert (job["total"], job["failed"]) == (2, 2)
    assert {i["code"] for i in items(tenant.admin, job["id"], "FAILED")} == {
        "invalid_state_transition"}

    removed = run(tenant.admin, {"action": "REMOVE_TAGS", "target": {"tags": {"all": ["pump"]}},
                                 "params": {"tags": ["pump", "north"]}})
    assert (removed["total"], removed["succeeded"]) == (3, 3)
    assert {i: thing(tenant.admin, i)["tags"] for i in (a, b, c, d)} == {
        a: [], b: ["meter"], c: ["meter"], d: []}


def test_groups_target_move_to_group_and_set_services(tenant, other_tenant) -> None:
    ids = ship(tenant, 5)
    group = tenant.admin.post("/v1/things-groups", json={"name": "pumps"}).json()["id"]
    moved = run(tenant.admin, {"action": "MOVE_TO_GROUP", "target": {"thing_ids": ids[:3]},
                               "params": {"things_group_id": group}})
    assert moved["succeeded"] == 3
    assert [thing(tenant.admin, i)["things_group_id"] for i in ids].count(group) == 3

    job = run(tenant.admin, {"action": "SET_SERVICES", "target": {"things_group_ids": [group]},
                             "params": {"sms": False}})
    assert (job["total"], job["succeeded"]) == (3, 3)
    assert [thing(tenant.admin, i)["services"] for i in ids] == [{"data": True, "sms": False}] * 3 \
        + [{"data": True, "sms": True}] * 2

    foreign = other_tenant.admin.post("/v1/things-groups", json={"name": "theirs"}).json()["id"]
    for bad in (foreign, "tgr_0000000000000000000000000000"):
        response = tenant.admin.post("/v1/bulk-actions", json={
            "action": "MOVE_TO_GROUP", "target": {"thing_ids": ids},
            "params": {"things_group_id": bad}})
        problem(response, 400, "unknown_reference")
        assert field_names(response) == {"params.things_group_id"}
        response = tenant.admin.post("/v1/bulk-actions", json={
            **ACTIVATE_ALL, "target": {"things_group_ids": [group, bad]}})
        problem(response, 400, "unknown_reference")
        assert field_names(response) == {"target.things_group_ids"}
    # Refused requests made no job: only the two that ran.
    assert len(tenant.admin.get("/v1/bulk-actions").json()["items"]) == 2


def test_filter_target_and_send_sms_with_per_thing_rules(tenant) -> None:
    ids = ship(tenant, 6)
    run(tenant.admin, {"action": "ACTIVATE", "target": {"thing_ids": ids[:4]}})
    run(tenant.admin, {"action": "SET_SERVICES", "target": {"thing_ids": ids[3:4]},
                       "params": {"sms": False}})
    by_state = submit(tenant.admin, {"action": "SUSPEND", "target": {"filter": {"state": "ACTIVE"}},
                                     "dry_run": True})
    assert by_state["total"] == 4
    one = thing(tenant.admin, ids[5])
    by_iccid = run(tenant.admin, {"action": "RETIRE", "target": {"filter": {"iccid": one["iccid"]}}})
    assert (by_iccid["total"], by_iccid["succeeded"]) == (1, 1)
    assert thing(tenant.admin, ids[5])["state"] == "RETIRED"

    job = run(tenant.admin, {"action": "SEND_SMS", "target": {"filter": {}},
                             "params": {"text": "reboot"}})
    # SMS only reaches ACTIVE Things with services.sms: the rest fail like a single send would.
    assert (job["total"], job["succeeded"], job["failed"]) == (6, 3, 3)
    assert sorted(i["thing_id"] for i in items(tenant.admin, job["id"], "FAILED")) == sorted(
        ids[3:])
    assert {i["code"] for i in items(tenant.admin, job["id"], "FAILED")} == {"sms_not_allowed"}
    sent = tenant.admin.get("/v1/sms", params={"direction": "MT"}).json()["items"]
    assert sorted((m["thing_id"], m["text"]) for m in sent) == sorted(
        (i, "reboot") for i in ids[:3])


def test_dry_run_counts_without_changing_anything(tenant, other_tenant) -> None:
    ids = ship(tenant, 3)
    foreign = ship(other_tenant, 1)
    for target in ({"thing_ids": [*ids, *foreign]}, {"filter": {}}):
        job = submit(tenant.admin, {**ACTIVATE_ALL, "target": target, "dry_run": True})
        assert {k: job[k] for k in ("status", "dry_run", "total", "processed", "succeeded")} == {
            "status": "COMPLETED", "dry_run": True, "total": 3, "processed": 0, "succeeded": 0}
        assert items(tenant.admin, job["id"]) == []
    assert _states(tenant.admin, ids) == ["PROVISIONED"] * 3
    assert events(tenant.admin, "thing.state_changed") == []


def test_idempotency_key_replays_the_one_job(tenant) -> None:
    ids = ship(tenant, 2)
    body = {"action": "ACTIVATE", "target": {"thing_ids": ids}}
    first = tenant.admin.post("/v1/bulk-actions", json=body, headers={"Idempotency-Key": "k-1"})
    again = tenant.admin.post("/v1/bulk-actions", json=body, headers={"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    other = tenant.admin.post("/v1/bulk-actions", json={**body, "action": "RETIRE"},
                              headers={"Idempotency-Key": "k-1"})
    problem(other, 412, "idempotency_key_reused")
    listed = tenant.admin.get("/v1/bulk-actions").json()["items"]
    assert [j["id"] for j in listed] == [first.json()["id"]]
    finished(tenant.admin, first.json()["id"])
    assert len(events(tenant.admin, "thing.state_changed")) == 2


def test_cancel_queued_at_once_and_running_after_the_current_batch(tenant) -> None:
    big = ship(tenant, 5_000)
    small = ship(tenant, 3)
    running = submit(tenant.admin, {"action": "ACTIVATE", "target": {"thing_ids": big}})
    wait_for(lambda: job_of(tenant.admin, running["id"])["processed"] > 0, timeout=60,
             what="the first batch")
    # One worker runs one job at a time: the second waits QUEUED behind the first.
    queued = submit(tenant.admin, {"action": "ACTIVATE", "target": {"thing_ids": small}})
    assert job_of(tenant.admin, queued["id"])["status"] == "QUEUED"
    response = tenant.admin.post(f"/v1/bulk-actions/{queued['id']}/cancel")
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["processed"]) == ("CANCELLED", 0)
    assert response.json()["finished_at"] is not None

    response = tenant.admin.post(f"/v1/bulk-actions/{running['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("RUNNING", "CANCELLED")
    job = finished(tenant.admin, running["id"])
    assert job["status"] == "CANCELLED"
    # Whole batches only: what was processed is exactly what changed, the rest stays PENDING.
    assert 0 < job["processed"] < len(big) and job["processed"] % 500 == 0
    assert job["succeeded"] == job["processed"]
    assert len(items(tenant.admin, running["id"], "PENDING")) == len(big) - job["processed"]
    active = tenant.admin.get("/v1/things", params={"state": "ACTIVE", "limit": 1000})
    activated = [t["id"] for t in active.json()["items"]]
    while active.json()["next_cursor"]:
        active = tenant.admin.get("/v1/things", params={
            "state": "ACTIVE", "limit": 1000, "cursor": active.json()["next_cursor"]})
        activated += [t["id"] for t in active.json()["items"]]
    assert len(activated) == job["processed"]

    assert _states(tenant.admin, small) == ["PROVISIONED"] * 3
    assert job_of(tenant.admin, queued["id"])["status"] == "CANCELLED"
    again = tenant.admin.post(f"/v1/bulk-actions/{queued['id']}/cancel")
    assert (again.status_code, again.json()["status"]) == (200, "CANCELLED")
    done = {e["data"]["bulk_action_id"]: e["data"]["status"]
            for e in events(tenant.admin, "bulk_action.finished")}
    assert done == {queued["id"]: "CANCELLED", running["id"]: "CANCELLED"}


@pytest.mark.parametrize(("body", "fields"), [
    ({"target": {"filter": {}}}, {"action"}),
    ({"action": "REBOOT", "target": {"filter": {}}}, {"action"}),
    ({"action": "ACTIVATE"}, {"target"}),
    ({"action": "ACTIVATE", "target": {}}, {"target"}),
    ({"action": "ACTIVATE", "target": {"filter": {}, "tags": {"all": ["a"]}}}, {"target"}),
    ({"action": "ACTIVATE", "target": {"thing_ids": []}}, {"target.thing_ids"}),
    ({"action": "ACTIVATE", "target": {"thing_ids": "thg_1"}}, {"target.thing_ids"}),
    ({"action": "ACTIVATE", "target": {"tags": {"all": ["a"], "any": ["b"]}}}, {"target.tags"}),
    ({"action": "ACTIVATE", "target": {"tags": {"all": []}}}, {"target.tags.all"}),
    ({"action": "ACTIVATE", "target": {"tags": {"any": ["ok", "not ok"]}}}, {"target.tags.1"}),
    ({"action": "ACTIVATE", "target": {"things_group_ids": []}}, {"target.things_group_ids"}),
    ({"action": "ACTIVATE", "target": {"filter": {"state": "ASLEEP"}}}, {"target.filter.state"}),
    ({"action": "ACTIVATE", "target": {"filter": {"iccid": "12"}}}, {"target.filter.iccid"}),
    ({"action": "ACTIVATE", "target": {"filter": {"tag": ["no way"]}}}, {"target.filter.tag"}),
    ({"action": "ACTIVATE", "target": {"filter": {"colour": "red"}}}, {"target.filter.colour"}),
    ({**ACTIVATE_ALL, "dry_run": "yes"}, {"dry_run"}),
    ({**ACTIVATE_ALL, "params": {"force": True}}, {"params"}),
    ({**ACTIVATE_ALL, "params": []}, {"params"}),
    ({**ACTIVATE_ALL, "priority": 1}, {"priority"}),
    ({**ACTIVATE_ALL, "action": "ADD_TAGS"}, {"params"}),
    ({**ACTIVATE_ALL, "action": "ADD_TAGS", "params": {"tags": []}}, {"params.tags"}),
    ({**ACTIVATE_ALL, "action": "REMOVE_TAGS", "params": {"tags": ["a b"]}}, {"params.tags.0"}),
    ({**ACTIVATE_ALL, "action": "MOVE_TO_GROUP"}, {"params"}),
    ({**ACTIVATE_ALL, "action": "SET_SERVICES", "params": {}}, {"params"}),
    ({**ACTIVATE_ALL, "action": "SET_SERVICES", "params": {"data": "yes"}}, {"params"}),
    ({**ACTIVATE_ALL, "action": "SEND_SMS", "params": {}}, {"params"}),
    ({**ACTIVATE_ALL, "action": "SEND_SMS", "params": {"text": "x", "data_base64": "eA=="}},
     {"params"}),
])
def test_invalid_bodies_answer_400_naming_the_field(shared_tenant, body, fields) -> None:
    response = shared_tenant.admin.post("/v1/bulk-actions", json=body)
    problem(response, 400, "validation_error")
    assert field_names(response) == fields, response.json()
    assert shared_tenant.admin.get("/v1/bulk-actions").json()["items"] == []


def test_too_many_thing_ids_and_malformed_json(shared_tenant) -> None:
    tenant = shared_tenant
    response = tenant.admin.post("/v1/bulk-actions", json={
        "action": "ACTIVATE", "target": {"thing_ids": [f"thg_{n}" for n in range(100_001)]}})
    problem(response, 400, "validation_error")
    assert field_names(response) == {"target.thing_ids"}
    response = tenant.admin.post("/v1/bulk-actions", content=b'{"action": ',
                                 headers={"Content-Type": "application/json"})
    problem(response, 400, "validation_error")
    assert tenant.admin.get("/v1/bulk-actions").json()["items"] == []


def test_bad_query_parameters_answer_400(tenant) -> None:
    job = submit(tenant.admin, {**ACTIVATE_ALL, "dry_run": True})
    for path, params, field in [
        (f"/v1/bulk-actions/{job['id']}/items", {"status": "DONE"}, "status"),
        (f"/v1/bulk-actions/{job['id']}/items", {"limit": 0}, "limit"),
        (f"/v1/bulk-actions/{job['id']}/items", {"cursor": "nonsense"}, "cursor"),
        ("/v1/bulk-actions", {"limit": 1001}, "limit"),
        ("/v1/bulk-actions", {"status": "RUNNING"}, "status"),
    ]:
        response = tenant.admin.get(path, params=params)
        problem(response, 400, "validation_error")
        assert field in field_names(response), response.json()


def test_list_pages_and_another_accounts_job_is_404(tenant, other_tenant) -> None:
    jobs = [submit(tenant.admin, {**ACTIVATE_ALL, "dry_run": True})["id"] for _ in range(3)]
    first = tenant.admin.get("/v1/bulk-actions", params={"limit": 2})
    second = tenant.admin.get("/v1/bulk-actions", params={
        "limit": 2, "cursor": first.json()["next_cursor"]})
    assert [j["id"] for j in first.json()["items"] + second.json()["items"]] == jobs
    assert second.json()["next_cursor"] is None
    assert other_tenant.admin.get("/v1/bulk-actions").json()["items"] == []
    for method, path in [("GET", f"/v1/bulk-actions/{jobs[0]}"),
                         ("GET", f"/v1/bulk-actions/{jobs[0]}/items"),
                         ("POST", f"/v1/bulk-actions/{jobs[0]}/cancel"),
                         ("GET", "/v1/bulk-actions/blk_0000000000000000000000000000")]:
        problem(other_tenant.admin.request(method, path), 404, "not_found")


def test_roles_viewer_and_billing_cannot_write(tenant) -> None:
    ids = ship(tenant, 1)
    job = submit(tenant.admin, {**ACTIVATE_ALL, "dry_run": True})
    viewer, billing, manager = (tenant.client(r) for r in ("viewer", "billing", "manager"))
    for client in (viewer, billing):
        problem(client.post("/v1/bulk-actions", json=ACTIVATE_ALL), 403, "forbidden")
        problem(client.post(f"/v1/bulk-actions/{job['id']}/cancel"), 403, "forbidden")
    assert viewer.get(f"/v1/bulk-actions/{job['id']}").status_code == 200
    assert viewer.get(f"/v1/bulk-actions/{job['id']}/items").status_code == 200
    problem(billing.get("/v1/bulk-actions"), 403, "forbidden")
    done = run(manager, {"action": "ACTIVATE", "target": {"thing_ids": ids}})
    assert done["succeeded"] == 1
    assert thing(tenant.admin, ids[0])["state"] == "ACTIVE"
