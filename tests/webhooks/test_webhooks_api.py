"""Webhooks CRUD: the secret shown once, validation, concurrency, tenancy and roles."""

from __future__ import annotations

import pytest
from livekit import field_names, problem
from sqlalchemy import select

from simplane.models import AuditEntry, Webhook

URL = "https://hooks.example.com/simplane"


def test_secret_is_generated_shown_once_and_encrypted_at_rest(tenant) -> None:
    created = tenant.admin.post("/v1/webhooks", json={"url": URL})
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["Location"] == f"/v1/webhooks/{body['id']}"
    assert created.headers["Cache-Control"] == "no-store"
    assert body["secret"].startswith("whsec_")
    assert {k: body[k] for k in ("url", "event_types", "enabled")} == {
        "url": URL, "event_types": [], "enabled": True}

    one = tenant.admin.get(f"/v1/webhooks/{body['id']}")
    assert one.status_code == 200 and "secret" not in one.json()
    assert one.json() == {k: v for k, v in body.items() if k != "secret"}
    listed = tenant.admin.get("/v1/webhooks").json()["items"]
    assert [w["id"] for w in listed] == [body["id"]] and "secret" not in listed[0]
    patched = tenant.admin.patch(f"/v1/webhooks/{body['id']}", json={"secret": "rotated-secret-0123"})
    assert patched.status_code == 200 and "secret" not in patched.json()

    # A replayed create names the same webhook but does not show its secret again.
    first = tenant.admin.post("/v1/webhooks", json={"url": f"{URL}/2"},
                              headers={"Idempotency-Key": "hook-2"})
    replay = tenant.admin.post("/v1/webhooks", json={"url": f"{URL}/2"},
                               headers={"Idempotency-Key": "hook-2"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert first.json()["secret"] not in replay.text

    with tenant.backend.database.transaction(read_only=True) as session:
        stored = session.scalar(select(Webhook.secret_encrypted).where(Webhook.id == body["id"]))
        audit = " ".join(str(a.changed_fields) for a in session.scalars(select(AuditEntry).where(
            AuditEntry.account_id == tenant.account_id, AuditEntry.path.like("/v1/webhooks%"))))
    assert body["secret"] not in stored and "rotated-secret-0123" not in stored
    assert "rotated-secret-0123" not in audit and body["secret"] not in audit


def test_create_with_own_secret_and_event_types(tenant) -> None:
    created = tenant.admin.post("/v1/webhooks", json={
        "url": "http://127.0.0.1:9/hook", "secret": "a-secret-of-my-own",
        "event_types": ["thing.state_changed", "sms.received", "thing.state_changed"],
        "enabled": False})
    assert created.status_code == 201, created.text
    assert created.json()["secret"] == "a-secret-of-my-own"
    assert created.json()["event_types"] == ["sms.received", "thing.state_changed"]
    assert created.json()["enabled"] is False
    webhook_id = created.json()["id"]
    patched = tenant.admin.patch(f"/v1/webhooks/{webhook_id}", json={
        "event_types": [], "enabled": True, "url": URL})
    assert patched.status_code == 200, patched.text
    assert {k: patched.json()[k] for k in ("event_types", "enabled", "url")} == {
        "event_types": [], "enabled": True, "url": URL}
    assert tenant.admin.get(f"/v1/webhooks/{webhook_id}").json() == patched.json()


def test_if_match_guards_patch_and_delete(tenant) -> None:
    created = tenant.admin.post("/v1/webhooks", json={"url": URL}).json()
    current = tenant.admin.get(f"/v1/webhooks/{created['id']}")
    etag = current.headers["ETag"]
    stale = tenant.admin.patch(f"/v1/webhooks/{created['id']}", json={"enabled": False},
                               headers={"If-Match": '"stale"'})
    problem(stale, 412, "etag_mismatch")
    fresh = tenant.admin.patch(f"/v1/webhooks/{created['id']}", json={"enabled": False},
                               headers={"If-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    problem(tenant.admin.delete(f"/v1/webhooks/{created['id']}", headers={"If-Match": etag}),
            412, "etag_mismatch")
    deleted = tenant.admin.delete(f"/v1/webhooks/{created['id']}",
                                  headers={"If-Match": fresh.headers["ETag"]})
    assert deleted.status_code == 204
    problem(tenant.admin.get(f"/v1/webhooks/{created['id']}"), 404, "not_found")
    problem(tenant.admin.delete(f"/v1/webhooks/{created['id']}"), 404, "not_found")


@pytest.mark.parametrize(("method", "body", "fields"), [
    ("POST", {}, {"url"}),
    ("POST", {"url": "ftp://example.com/x"}, {"url"}),
    ("POST", {"url": "not a url"}, {"url"}),
    ("POST", {"url": "https://"}, {"url"}),
    ("POST", {"url": URL, "event_types": ["thing.exploded"]}, {"event_types.0"}),
    ("POST", {"url": URL, "event_types": "thing.state_changed"}, {"event_types"}),
    ("POST", {"url": URL, "enabled": "yes"}, {"enabled"}),
    ("POST", {"url": URL, "secret": "short"}, {"secret"}),
    ("POST", {"url": URL, "colour": "red"}, {"colour"}),
    ("PATCH", {"url": "mailto:me@example.com"}, {"url"}),
    ("PATCH", {"enabled": 1}, {"enabled"}),
    ("PATCH", {"event_types": [None]}, {"event_types.0"}),
    ("PATCH", {"id": "whk_other"}, {"id"}),
])
def test_invalid_bodies_answer_400_naming_the_field(shared_tenant, method, body, fields) -> None:
    admin = shared_tenant.admin
    listed = admin.get("/v1/webhooks", params={"limit": 1000}).json()["items"]
    existing = listed[0] if listed else admin.post("/v1/webhooks", json={"url": URL}).json()
    path = "/v1/webhooks" if method == "POST" else f"/v1/webhooks/{existing['id']}"
    response = admin.request(method, path, json=body)
    problem(response, 400, "validation_error")
    assert field_names(response) == fields, response.json()
    assert [w["id"] for w in admin.get("/v1/webhooks").json()["items"]] == [existing["id"]]
    assert admin.get(f"/v1/webhooks/{existing['id']}").json()["url"] == URL


def test_malformed_json_and_bad_query_parameters(shared_tenant) -> None:
    tenant = shared_tenant
    problem(tenant.admin.post("/v1/webhooks", content=b"{", headers={
        "Content-Type": "application/json"}), 400, "validation_error")
    for params, field in [({"limit": 0}, "limit"), ({"cursor": "??"}, "cursor"),
                          ({"enabled": "true"}, "enabled")]:
        response = tenant.admin.get("/v1/webhooks", params=params)
        problem(response, 400, "validation_error")
        assert field in field_names(response)


def test_list_pages_in_creation_order(tenant) -> None:
    ids = [tenant.admin.post("/v1/webhooks", json={"url": f"{URL}/{n}"}).json()["id"]
           for n in range(3)]
    first = tenant.admin.get("/v1/webhooks", params={"limit": 2})
    assert 'rel="next"' in first.headers["Link"]
    second = tenant.admin.get("/v1/webhooks", params={"limit": 2,
                                                       "cursor": first.json()["next_cursor"]})
    assert [w["id"] for w in first.json()["items"] + second.json()["items"]] == ids
    assert second.json()["next_cursor"] is None


def test_another_accounts_webhook_is_404(tenant, other_tenant) -> None:
    theirs = other_tenant.admin.post("/v1/webhooks", json={"url": URL}).json()["id"]
    assert tenant.admin.get("/v1/webhooks").json()["items"] == []
    for method, path, body in [("GET", f"/v1/webhooks/{theirs}", None),
                               ("PATCH", f"/v1/webhooks/{theirs}", {"enabled": False}),
                               ("DELETE", f"/v1/webhooks/{theirs}", None),
                               ("GET", f"/v1/webhooks/{theirs}/deliveries", None)]:
        problem(tenant.admin.request(method, path, json=body), 404, "not_found")
    assert other_tenant.admin.get(f"/v1/webhooks/{theirs}").json()["enabled"] is True


def test_roles_only_admin_and_manager_write(tenant) -> None:
    webhook = tenant.admin.post("/v1/webhooks", json={"url": URL}).json()["id"]
    viewer, billing, manager = (tenant.client(r) for r in ("viewer", "billing", "manager"))
    for client in (viewer, billing):
        problem(client.post("/v1/webhooks", json={"url": URL}), 403, "forbidden")
        problem(client.patch(f"/v1/webhooks/{webhook}", json={"enabled": False}), 403,
                "forbidden")
        problem(client.delete(f"/v1/webhooks/{webhook}"), 403, "forbidden")
    viewed = viewer.get(f"/v1/webhooks/{webhook}")
    assert viewed.status_code == 200 and "secret" not in viewed.json()
    assert viewer.get(f"/v1/webhooks/{webhook}/deliveries").status_code == 200
    problem(billing.get("/v1/webhooks"), 403, "forbidden")
    made = manager.post("/v1/webhooks", json={"url": URL})
    assert made.status_code == 201 and made.json()["secret"]
    assert manager.delete(f"/v1/webhooks/{webhook}").status_code == 204
