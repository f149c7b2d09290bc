"""Idempotency-Key on POST: replay, reuse with another body, per-credential keys."""

from __future__ import annotations

import secrets


def groups_named(client, name: str) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get("/v1/things-groups", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [g for g in response.json()["items"] if g["name"] == name]


def test_same_key_and_body_replays_the_first_response(tenant):
    key = {"Idempotency-Key": secrets.token_hex(8)}
    body = {"name": "replayed", "description": "once"}
    first = tenant.admin.post("/v1/things-groups", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = tenant.admin.post("/v1/things-groups", json=body, headers=key)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["content-type"] == first.headers["content-type"]
    # Fresh per response, not replayed.
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert "ratelimit-remaining" in second.headers
    assert [g["id"] for g in groups_named(tenant.admin, "replayed")] == [first.json()["id"]]


def test_replay_does_not_repeat_the_work_after_a_change(tenant):
    key = {"Idempotency-Key": "create-then-rename"}
    first = tenant.admin.post("/v1/things-groups", json={"name": "orig"}, headers=key)
    location = first.headers["location"]
    assert tenant.admin.patch(location, json={"name": "renamed"}).status_code == 200
    again = tenant.admin.post("/v1/things-groups", json={"name": "orig"}, headers=key)
    assert again.status_code == 201
    assert again.json()["name"] == "orig"  # the first response, verbatim
    assert groups_named(tenant.admin, "orig") == []
    assert len(groups_named(tenant.admin, "renamed")) == 1


def test_an_error_outcome_is_replayed_too(tenant):
    key = {"Idempotency-Key": "bad-body"}
    first = tenant.admin.post("/v1/things-groups", json={"name": ""}, headers=key)
    assert first.status_code == 400
    second = tenant.admin.post("/v1/things-groups", json={"name": ""}, headers=key)
    assert second.status_code == 400
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["content-type"].startswith("application/problem+json")


def test_same_key_with_another_body_is_refused(tenant):
    key = {"Idempotency-Key": "one-key"}
    first = tenant.admin.post("/v1/things-groups", json={"name": "alpha"}, headers=key)
    assert first.status_code == 201
    reused = tenant.admin.post("/v1/things-groups", json={"name": "beta"}, headers=key)
    assert reused.status_code == 412, reused.text
    assert reused.headers["content-type"].startswith("application/problem+json")
    assert reused.json()["code"] == "idempotency_key_reused"
    assert "one-key" in reused.json()["detail"]
    assert groups_named(tenant.admin, "beta") == []
    assert len(groups_named(tenant.admin, "alpha")) == 1


def test_same_key_on_another_route_is_refused(tenant):
    key = {"Idempotency-Key": "route-key"}
    assert tenant.admin.post("/v1/things-groups", json={"name": "r"}, headers=key).status_code == 201
    other = tenant.admin.post("/v1/users", json={"email": f"u{secrets.token_hex(4)}@example.com",
                                                 "role": "viewer"}, headers=key)
    assert other.status_code == 412
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(tenant.admin.get("/v1/users").json()["items"]) == 1


def test_keys_are_per_credential(tenant):
    manager = tenant.client("manager")
    key = {"Idempotency-Key": "shared-key"}
    body = {"name": "per-credential"}
    mine = tenant.admin.post("/v1/things-groups", json=body, headers=key)
    theirs = manager.post("/v1/things-groups", json=body, headers=key)
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert len(groups_named(tenant.admin, "per-credential")) == 2
    # Each credential's own repeat replays its own first response.
    assert manager.post("/v1/things-groups", json=body,
                        headers=key).json()["id"] == theirs.json()["id"]


def test_keys_of_another_account_do_not_collide(tenant, other_tenant):
    key = {"Idempotency-Key": "tenant-key"}
    body = {"name": "tenants"}
    ours = tenant.admin.post("/v1/things-groups", json=body, headers=key)
    theirs = other_tenant.admin.post("/v1/things-groups", json=body, headers=key)
    assert ours.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert groups_named(tenant.admin, "tenants")[0]["id"] == ours.json()["id"]


def test_key_length_is_1_to_255(tenant):
    too_long = tenant.admin.post("/v1/things-groups", json={"name": "long-key"},
                                 headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 400, too_long.text
    assert too_long.headers["content-type"].startswith("application/problem+json")
    assert too_long.json()["code"] == "validation_error"
    assert {e["field"] for e in too_long.json()["errors"]} == {"Idempotency-Key"}
    empty = tenant.admin.post("/v1/things-groups", json={"name": "long-key"},
                              headers={"Idempotency-Key": ""})
    assert empty.status_code == 400
    assert groups_named(tenant.admin, "long-key") == []
    longest = tenant.admin.post("/v1/things-groups", json={"name": "long-key"},
                                headers={"Idempotency-Key": "k" * 255})
    assert longest.status_code == 201


def test_without_a_key_every_post_does_the_work(tenant):
    for _ in range(2):
        assert tenant.admin.post("/v1/things-groups",
                                 json={"name": "twice"}).status_code == 201
    assert len(groups_named(tenant.admin, "twice")) == 2


def test_a_refused_token_is_not_stored_as_the_outcome(tenant, clients):
    user = tenant.admin.post("/v1/users", json={
        "email": f"m-{secrets.token_hex(5)}@example.com", "role": "manager"}).json()
    credential = tenant.admin.post(f"/v1/users/{user['id']}/credentials", json={}).json()
    manager = clients(tenant.base_url,
                      tenant.token(credential["client_id"], credential["client_secret"]))
    key = {"Idempotency-Key": "while-disabled"}
    assert tenant.admin.patch(f"/v1/users/{user['id']}",
                              json={"status": "DISABLED"}).status_code == 200
    assert manager.post("/v1/things-groups", json={"name": "later"},
                        headers=key).status_code == 401
    assert tenant.admin.patch(f"/v1/users/{user['id']}",
                              json={"status": "ACTIVE"}).status_code == 200
    # The 401 was no outcome of the work: the retry (with a fresh token for the same
    # credential; the old one died with the disable) does it.
    manager = clients(tenant.base_url,
                      tenant.token(credential["client_id"], credential["client_secret"]))
    retried = manager.post("/v1/things-groups", json={"name": "later"}, headers=key)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert len(groups_named(tenant.admin, "later")) == 1
