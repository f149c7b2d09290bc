"""The audit log: every authenticated write, whatever its outcome, with secrets masked."""

from __future__ import annotations

import secrets

import httpx


def audit_entries(tenant) -> list[dict]:  # type: ignore[no-untyped-def]
    entries, cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = tenant.admin.get("/v1/audit-log", params=params)
        assert page.status_code == 200, page.text
        entries += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return entries


def entry_for(tenant, response: httpx.Response) -> dict:  # type: ignore[no-untyped-def]
    request_id = response.headers["x-request-id"]
    found = [e for e in audit_entries(tenant) if e["request_id"] == request_id]
    assert len(found) == 1, (request_id, found)
    return found[0]


def me(client: httpx.Client) -> dict:
    return client.get("/v1/me").json()


def test_create_update_delete_are_recorded(tenant):
    admin_user = tenant.admin_user_id
    created = tenant.admin.post("/v1/things-groups", json={"name": "audited", "description": "d"})
    group_id = created.json()["id"]
    patched = tenant.admin.patch(f"/v1/things-groups/{group_id}", json={"name": "renamed"},
                                 headers={"If-Match": created.headers["etag"]})
    deleted = tenant.admin.delete(f"/v1/things-groups/{group_id}")
    assert (created.status_code, patched.status_code, deleted.status_code) == (201, 200, 204)

    create_entry = entry_for(tenant, created)
    assert create_entry["actor_user_id"] == admin_user
    assert create_entry["client_id"] == tenant.client_id
    assert create_entry["method"] == "POST"
    assert create_entry["path"] == "/v1/things-groups"
    assert create_entry["resource_id"] == group_id
    assert create_entry["changed_fields"] == {"name": "audited", "description": "d"}
    assert create_entry["status"] == 201
    assert create_entry["occurred_at"].endswith("Z")

    patch_entry = entry_for(tenant, patched)
    assert (patch_entry["method"], patch_entry["path"], patch_entry["resource_id"],
            patch_entry["changed_fields"], patch_entry["status"]) == (
        "PATCH", f"/v1/things-groups/{group_id}", group_id, {"name": "renamed"}, 200)

    delete_entry = entry_for(tenant, deleted)
    assert (delete_entry["method"], delete_entry["resource_id"], delete_entry["status"]) == (
        "DELETE", group_id, 204)


def test_failed_writes_are_recorded(tenant):
    group = tenant.admin.post("/v1/things-groups", json={"name": "target"}).json()
    stale = tenant.admin.patch(f"/v1/things-groups/{group['id']}", json={"name": "nope"},
                               headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    entry = entry_for(tenant, stale)
    assert (entry["status"], entry["resource_id"], entry["changed_fields"]) == (
        412, group["id"], {"name": "nope"})

    in_use = tenant.admin.delete(
        f"/v1/things-groups/{tenant.things(1)[0]['things_group_id']}")
    assert in_use.status_code == 412
    assert entry_for(tenant, in_use)["status"] == 412

    invalid = tenant.admin.post("/v1/things-groups", json={"name": "", "extra": True})
    assert invalid.status_code == 400
    assert entry_for(tenant, invalid)["status"] == 400

    missing = tenant.admin.patch("/v1/things-groups/grp_does_not_exist", json={"name": "x"})
    assert missing.status_code == 404
    assert entry_for(tenant, missing)["status"] == 404


def test_a_refused_role_is_recorded_under_its_own_user(tenant):
    viewer = tenant.client("viewer")
    refused = viewer.post("/v1/things-groups", json={"name": "viewer-try"})
    assert refused.status_code == 403
    entry = entry_for(tenant, refused)
    assert entry["status"] == 403
    assert entry["actor_user_id"] == me(viewer)["user"]["id"]
    assert entry["client_id"] == me(viewer)["client_id"]


def test_secrets_are_masked(tenant):
    user = tenant.admin.post("/v1/users", json={
        "email": f"s-{secrets.token_hex(5)}@example.com", "role": "manager"}).json()
    credential = tenant.admin.post(f"/v1/users/{user['id']}/credentials", json={"name": "k"})
    assert credential.status_code == 201
    secret = credential.json()["client_secret"]
    # Unknown fields are refused, yet the attempt is recorded: with the values masked.
    sneaky = tenant.admin.post("/v1/things-groups", json={
        "name": "n", "client_secret": "hunter2-secret", "password": "pw-hunter2",
        "nested": {"psk": "psk-hunter2", "access_token": "tok-hunter2", "plain": "visible"}})
    assert sneaky.status_code == 400
    entry = entry_for(tenant, sneaky)
    assert entry["changed_fields"] == {
        "name": "n", "client_secret": "***", "password": "***",
        "nested": {"psk": "***", "access_token": "***", "plain": "visible"}}

    log_text = tenant.admin.get("/v1/audit-log", params={"limit": 1000}).text
    for leaked in (secret, "hunter2"):
        assert leaked not in log_text
    credential_entry = entry_for(tenant, credential)
    assert credential_entry["resource_id"] == credential.json()["id"]
    assert credential_entry["changed_fields"]["client_id"] == credential.json()["client_id"]


def test_reads_and_unauthenticated_writes_are_not_recorded(tenant, clients):
    before = len(audit_entries(tenant))
    tenant.admin.get("/v1/things-groups")
    tenant.admin.get("/v1/me")
    anonymous = clients(tenant.base_url)
    assert anonymous.post("/v1/things-groups", json={"name": "anon"}).status_code == 401
    # Listing the log is a read too.
    assert len(audit_entries(tenant)) == before


def test_entries_belong_to_their_account(tenant, other_tenant):
    ours = tenant.admin.post("/v1/things-groups", json={"name": "ours"})
    theirs_ids = {e["request_id"] for e in audit_entries(other_tenant)}
    assert ours.headers["x-request-id"] not in theirs_ids


def test_audit_log_is_for_admins_only(tenant):
    manager = tenant.client("manager")
    response = manager.get("/v1/audit-log")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
