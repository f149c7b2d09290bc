"""API credentials: the secret is shown once and stored only as an argon2 hash; revoking a
credential or disabling its user ends its tokens at once (api.md §2)."""

from __future__ import annotations

import base64

import httpx
import pytest

from simplane.billing.cycles import period_of
from simplane.models import utcnow
from argon2 import PasswordHasher
from route_table import PSK, ROUTES, activate, furnish
from sqlalchemy import select
from userkit import add_member, keys, problem, request_token

from simplane.models import AuditEntry, Credential, IdempotencyRecord


def _stored(tenant, client_id: str) -> Credential | None:  # type: ignore[no-untyped-def]
    with tenant.backend.database.transaction(read_only=True) as session:
        return session.scalar(select(Credential).where(Credential.client_id == client_id))


def _no_secret_in(response: httpx.Response, *secrets: str) -> None:
    assert not any(secret in response.text for secret in secrets), response.request.url
    if response.headers.get("content-type", "").endswith("json"):
        assert not any("secret" in key for key in keys(response.json())), response.request.url


def test_post_shows_the_secret_once(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "manager")

    created = tenant.admin.post(f"/v1/users/{member.id}/credentials", json={"name": "ci"})

    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "client_id", "name", "created_at", "last_used_at", "client_secret"}
    assert body["name"] == "ci" and body["last_used_at"] is None
    assert len(body["client_secret"]) >= 32
    assert created.headers["cache-control"] == "no-store"
    assert created.headers["location"] == \
        f"/v1/users/{member.id}/credentials/{body['client_id']}"
    listed = tenant.admin.get(f"/v1/users/{member.id}/credentials")
    assert listed.status_code == 200
    assert [c["client_id"] for c in listed.json()["items"]] == [member.client_id,
                                                               body["client_id"]]
    assert {k: v for k, v in body.items() if k != "client_secret"} in listed.json()["items"]
    _no_secret_in(listed, body["client_secret"], member.client_secret)


def test_post_without_a_body_is_fine_and_unknown_fields_are_not(tenant) -> None:  # type: ignore[no-untyped-def]
    assert tenant.admin.post(f"/v1/users/{tenant.admin_user_id}/credentials").status_code == 201
    body = problem(tenant.admin.post(f"/v1/users/{tenant.admin_user_id}/credentials",
                                     json={"client_secret": "mine"}), 400, "validation_error")
    assert body["errors"][0]["field"] == "client_secret"


def test_the_secret_works_at_the_token_endpoint(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "viewer")
    created = tenant.admin.post(f"/v1/users/{member.id}/credentials", json={}).json()

    with_basic = request_token(tenant.base_url, created["client_id"], created["client_secret"])
    with_form = httpx.post(f"{tenant.base_url}/v1/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": created["client_id"],
        "client_secret": created["client_secret"]})

    for answer in (with_basic, with_form):
        assert answer.status_code == 200, answer.text
        me = httpx.get(f"{tenant.base_url}/v1/me", headers={
            "Authorization": f"Bearer {answer.json()['access_token']}"})
        assert me.json()["client_id"] == created["client_id"]
        assert me.json()["user"]["id"] == member.id
    used = tenant.admin.get(f"/v1/users/{member.id}/credentials").json()["items"]
    assert next(c for c in used if c["client_id"] == created["client_id"])["last_used_at"]
    wrong = request_token(tenant.base_url, created["client_id"], created["client_secret"] + "x")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_the_secret_is_stored_as_an_argon2id_hash(tenant) -> None:  # type: ignore[no-untyped-def]
    created = tenant.admin.post(f"/v1/users/{tenant.admin_user_id}/credentials",
                                json={"name": "hashed"}).json()
    secret = created["client_secret"]

    row = _stored(tenant, created["client_id"])

    assert row is not None
    assert row.secret_hash.startswith("$argon2id$")
    assert secret not in row.secret_hash
    assert PasswordHasher().verify(row.secret_hash, secret)
    # Nothing else of the account keeps it: not the audit log.
    with tenant.backend.database.transaction(read_only=True) as session:
        audit = session.scalars(select(AuditEntry).where(
            AuditEntry.account_id == tenant.account_id)).all()
    assert audit and not any(secret in str(entry.changed_fields) for entry in audit)
    _no_secret_in(tenant.admin.get("/v1/audit-log"), secret)


def test_an_idempotent_replay_does_not_keep_the_secret(tenant) -> None:  # type: ignore[no-untyped-def]
    path = f"/v1/users/{tenant.admin_user_id}/credentials"
    headers = {"Idempotency-Key": "credential-once"}
    first = tenant.admin.post(path, json={"name": "retry"}, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["client_secret"]

    replay = tenant.admin.post(path, json={"name": "retry"}, headers=headers)

    # The retry names the same credential (no second one) but the secret stays shown once.
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["client_id"] == first.json()["client_id"]
    assert secret not in replay.text
    with tenant.backend.database.transaction(read_only=True) as session:
        stored = session.scalars(select(IdempotencyRecord.body).where(
            IdempotencyRecord.account_id == tenant.account_id)).all()
    assert stored and not any(secret in body for body in stored)
    listed = tenant.admin.get(path).json()["items"]
    assert [c["name"] for c in listed].count("retry") == 1


def test_delete_revokes_the_credential_and_its_tokens_at_once(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "manager")
    spare = tenant.admin.post(f"/v1/users/{member.id}/credentials", json={}).json()
    assert member.client.get("/v1/me").status_code == 200

    deleted = tenant.admin.delete(f"/v1/users/{member.id}/credentials/{member.client_id}")

    assert deleted.status_code == 204, deleted.text
    answer = member.client.get("/v1/me")
    problem(answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    refused = request_token(tenant.base_url, member.client_id, member.client_secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert _stored(tenant, member.client_id) is None
    # The user's other credential is untouched.
    assert request_token(tenant.base_url, spare["client_id"], spare["client_secret"]) \
        .status_code == 200
    problem(tenant.admin.delete(f"/v1/users/{member.id}/credentials/{member.client_id}"),
            404, "not_found")


def test_a_credential_is_only_found_under_its_own_user(tenant) -> None:  # type: ignore[no-untyped-def]
    owner, other = add_member(tenant, "manager"), add_member(tenant, "manager")

    problem(tenant.admin.delete(f"/v1/users/{other.id}/credentials/{owner.client_id}"),
            404, "not_found")
    problem(tenant.admin.delete(f"/v1/users/{owner.id}/credentials/cli_000000000000000000000000"),
            404, "not_found")

    assert owner.client.get("/v1/me").status_code == 200
    assert _stored(tenant, owner.client_id) is not None


def test_disabling_a_user_ends_its_tokens_and_its_credentials_at_once(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "manager")
    assert member.client.get("/v1/things").status_code == 200

    disabled = tenant.admin.patch(f"/v1/users/{member.id}", json={"status": "DISABLED"})

    assert disabled.status_code == 200 and disabled.json()["status"] == "DISABLED"
    problem(member.client.get("/v1/things"), 401, "unauthorized")
    problem(member.client.post("/v1/things-groups", json={"name": "late"}), 401, "unauthorized")
    refused = request_token(tenant.base_url, member.client_id, member.client_secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert refused.headers["content-type"] == "application/json"
    # Disabling is not deleting: the credential stays and serves again once re-enabled.
    assert _stored(tenant, member.client_id) is not None
    assert tenant.admin.patch(f"/v1/users/{member.id}", json={"status": "ACTIVE"}) \
        .status_code == 200
    assert request_token(tenant.base_url, member.client_id, member.client_secret) \
        .status_code == 200
    # A token issued before the user was disabled stays dead after re-enabling.
    problem(member.client.get("/v1/things"), 401, "unauthorized")


def test_credentials_of_an_unknown_user_are_not_found(tenant) -> None:  # type: ignore[no-untyped-def]
    unknown = "/v1/users/usr_00000000000000000000000000000/credentials"
    problem(tenant.admin.get(unknown), 404, "not_found")
    problem(tenant.admin.post(unknown, json={}), 404, "not_found")


@pytest.mark.parametrize("role", ["manager", "viewer", "billing"])
def test_only_an_admin_handles_credentials(tenant, role: str) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, role)
    for method, path in [("GET", f"/v1/users/{member.id}/credentials"),
                         ("POST", f"/v1/users/{member.id}/credentials"),
                         ("DELETE", f"/v1/users/{member.id}/credentials/{member.client_id}")]:
        answer = member.client.request(method, path)
        problem(answer, 403, "forbidden")
        _no_secret_in(answer, member.client_secret)
    assert len(tenant.admin.get(f"/v1/users/{member.id}/credentials").json()["items"]) == 1


def test_a_viewer_never_sees_a_secret(tenant) -> None:  # type: ignore[no-untyped-def]
    viewer = add_member(tenant, "viewer")
    fresh = tenant.admin.post(f"/v1/users/{viewer.id}/credentials", json={}).json()
    # A VPN tunnel's pre-shared key too, raw or as the peer configuration encodes it.
    secrets = (viewer.client_secret, fresh["client_secret"], tenant.client_secret, PSK,
               base64.b64encode(PSK.encode()).decode())
    thing = activate(tenant, tenant.things(1)[0])
    ids = {"things": thing["id"], "things-groups": thing["things_group_id"],
           "users": viewer.id, "credentials": viewer.client_id,
           **furnish(tenant, thing).ids()}

    # Every GET route, including those it may not call; a route with a new kind of id in its
    # path fails here until `ids` names one.
    for route in ROUTES:
        if route.method != "GET":
            continue
        params = ({"iccid": thing["iccid"]} if route.path == "/v1/things/lookup"
                  else {"period": period_of(utcnow())} if route.path == "/v1/billing/reports"
                  else {})
        path = route.path.format(**{name: ids[kind] for name, kind in route.kinds.items()})
        answer = viewer.client.get(path, params=params)
        assert answer.status_code in (200, 302, 403), (route, answer.text)
        assert (answer.status_code == 403) == ("viewer" not in (route.roles or ())), route
        _no_secret_in(answer, *secrets)
