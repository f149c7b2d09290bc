"""Users: create, read, list, update and delete; one email is one user platform-wide (api.md §2)."""

from __future__ import annotations

import secrets

from collections.abc import Iterator

import pytest
from route_table import open_tenant
from sqlalchemy import func, select
from userkit import Member, add_member, at_once, email, problem, request_token

from simplane.models import Credential, User


@pytest.fixture(scope="module")
def shared(server, backend) -> Iterator:  # type: ignore[no-untyped-def]
    """One account for the tests that only see requests refused: nothing of it changes."""
    tenant = open_tenant(server.base_url, backend)
    yield tenant
    tenant.close()


@pytest.fixture(scope="module")
def shared_member(shared) -> Member:  # type: ignore[no-untyped-def]
    return add_member(shared, "viewer")


def _user_count(tenant) -> int:  # type: ignore[no-untyped-def]
    with tenant.backend.database.transaction(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(User)
                              .where(User.account_id == tenant.account_id))


def test_create_answers_201_with_location_and_the_user(tenant) -> None:  # type: ignore[no-untyped-def]
    address = email("new")
    created = tenant.admin.post("/v1/users", json={"email": address, "name": "Ada",
                                                   "role": "manager"})

    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "email", "name", "role", "status", "created_at"}
    assert body["id"].startswith("usr_")
    assert (body["email"], body["name"], body["role"], body["status"]) == \
        (address, "Ada", "manager", "ACTIVE")
    assert body["created_at"].endswith("Z")
    assert created.headers["location"] == f"/v1/users/{body['id']}"
    fetched = tenant.admin.get(created.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["etag"] == created.headers["etag"]


def test_email_is_stored_trimmed_and_lower_case(tenant) -> None:  # type: ignore[no-untyped-def]
    local = f"Mixed.Case-{secrets.token_hex(4)}"
    created = tenant.admin.post("/v1/users", json={"email": f"  {local}@Example.COM ",
                                                   "role": "viewer"})
    assert created.status_code == 201, created.text
    assert created.json()["email"] == f"{local.lower()}@example.com"
    with tenant.backend.database.transaction(read_only=True) as session:
        stored = session.scalar(select(User.email).where(User.id == created.json()["id"]))
    assert stored == f"{local.lower()}@example.com"


@pytest.mark.parametrize("spelling", [str.lower, str.upper, lambda e: f" {e.title()} "])
def test_email_taken_in_the_same_account(tenant, spelling) -> None:  # type: ignore[no-untyped-def]
    address = email("dup")
    assert tenant.admin.post("/v1/users", json={"email": address, "role": "viewer"}) \
        .status_code == 201
    before = _user_count(tenant)

    body = problem(tenant.admin.post("/v1/users", json={"email": spelling(address),
                                                        "role": "manager"}), 412, "email_taken")

    assert address in body["detail"]
    assert _user_count(tenant) == before


def test_email_taken_in_another_account(tenant, other_tenant) -> None:  # type: ignore[no-untyped-def]
    address = email("theirs")
    assert other_tenant.admin.post("/v1/users", json={"email": address, "role": "viewer"}) \
        .status_code == 201
    before = _user_count(tenant)

    problem(tenant.admin.post("/v1/users", json={"email": address.upper(), "role": "admin"}),
            412, "email_taken")
    # The other account's first admin, created by the operator, holds its email the same way.
    theirs = other_tenant.admin.get("/v1/me").json()["user"]["email"]
    problem(tenant.admin.post("/v1/users", json={"email": theirs, "role": "viewer"}),
            412, "email_taken")

    assert _user_count(tenant) == before


def test_same_new_email_in_two_accounts_at_once_gives_one_user(tenant, other_tenant) -> None:  # type: ignore[no-untyped-def]
    address = email("race")
    answers = at_once(
        lambda: tenant.admin.post("/v1/users", json={"email": address, "role": "viewer"}),
        lambda: other_tenant.admin.post("/v1/users", json={"email": address, "role": "viewer"}))

    assert sorted(a.status_code for a in answers) == [201, 412], [a.text for a in answers]
    problem(next(a for a in answers if a.status_code == 412), 412, "email_taken")
    with tenant.backend.database.transaction(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(User)
                              .where(User.email == address)) == 1


@pytest.mark.parametrize("bad", ["not-an-email", "a@b", "two@@example.com", "sp ace@example.com",
                                 "@example.com", "user@", "", "x" * 250 + "@example.com", 42,
                                 None])
def test_invalid_email_is_400_naming_the_field(shared, bad) -> None:  # type: ignore[no-untyped-def]
    before = _user_count(shared)
    body = problem(shared.admin.post("/v1/users", json={"email": bad, "role": "viewer"}),
                   400, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["email"]
    assert _user_count(shared) == before


@pytest.mark.parametrize("bad", ["root", "Admin", "", None, 1, ["admin"]])
def test_invalid_role_is_400_naming_the_field(shared, bad) -> None:  # type: ignore[no-untyped-def]
    before = _user_count(shared)
    body = problem(shared.admin.post("/v1/users", json={"email": email(), "role": bad}),
                   400, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["role"]
    assert _user_count(shared) == before


@pytest.mark.parametrize(("payload", "fields"), [
    ({"name": "no email or role"}, {"email", "role"}),
    ({"email": "x@example.com", "role": "viewer", "status": "ACTIVE"}, {"status"}),
    ({"email": "x@example.com", "role": "viewer", "account_id": "acc_x"}, {"account_id"}),
    ({"email": "x@example.com", "role": "viewer", "name": "n" * 201}, {"name"}),
])
def test_create_refuses_missing_unknown_and_oversized_fields(shared, payload, fields) -> None:  # type: ignore[no-untyped-def]
    before = _user_count(shared)
    body = problem(shared.admin.post("/v1/users", json=payload), 400, "validation_error")
    assert {e["field"] for e in body["errors"]} == fields
    assert _user_count(shared) == before


def test_list_shows_the_accounts_users_only(tenant, other_tenant) -> None:  # type: ignore[no-untyped-def]
    mine = [add_member(tenant, role).id for role in ("manager", "viewer")]
    theirs = add_member(other_tenant, "manager").id

    first = tenant.admin.get("/v1/users", params={"limit": 2})
    assert first.status_code == 200
    assert first.json()["next_cursor"] and 'rel="next"' in first.headers["link"]
    rest = tenant.admin.get("/v1/users", params={"cursor": first.json()["next_cursor"]})
    ids = [u["id"] for u in first.json()["items"] + rest.json()["items"]]

    assert ids == [tenant.admin_user_id, *mine]
    assert theirs not in ids


def test_patch_changes_name_role_and_status(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "viewer")
    changed = tenant.admin.patch(f"/v1/users/{member.id}",
                                 json={"name": "Grace", "role": "manager"})
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("name", "role", "status", "email")} == \
        {"name": "Grace", "role": "manager", "status": "ACTIVE", "email": member.user["email"]}
    assert tenant.admin.get(f"/v1/users/{member.id}").json() == changed.json()


@pytest.mark.parametrize("payload", [{"role": "owner"}, {"status": "GONE"}, {"email": "e@x.io"},
                                     {"name": 5}, {"status": "DISABLED", "id": "usr_x"},
                                     {"role": None}, {"status": None}, {"name": None}])
def test_refused_patch_changes_nothing(shared, shared_member, payload) -> None:  # type: ignore[no-untyped-def]
    member = shared_member
    before = shared.admin.get(f"/v1/users/{member.id}")

    problem(shared.admin.patch(f"/v1/users/{member.id}", json=payload), 400, "validation_error")

    after = shared.admin.get(f"/v1/users/{member.id}")
    assert after.json() == before.json() and after.headers["etag"] == before.headers["etag"]
    assert member.client.get("/v1/me").status_code == 200


def test_patch_honours_if_match(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "viewer")
    etag = tenant.admin.get(f"/v1/users/{member.id}").headers["etag"]
    assert tenant.admin.patch(f"/v1/users/{member.id}", json={"name": "one"},
                              headers={"If-Match": etag}).status_code == 200

    problem(tenant.admin.patch(f"/v1/users/{member.id}", json={"name": "two"},
                               headers={"If-Match": etag}), 412, "etag_mismatch")
    problem(tenant.admin.delete(f"/v1/users/{member.id}", headers={"If-Match": etag}),
            412, "etag_mismatch")
    assert tenant.admin.get(f"/v1/users/{member.id}").json()["name"] == "one"


def test_delete_removes_the_user_its_credentials_and_its_tokens(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "manager")

    deleted = tenant.admin.delete(f"/v1/users/{member.id}")

    assert deleted.status_code == 204, deleted.text
    problem(tenant.admin.get(f"/v1/users/{member.id}"), 404, "not_found")
    problem(member.client.get("/v1/me"), 401, "unauthorized")
    refused = request_token(tenant.base_url, member.client_id, member.client_secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    with tenant.backend.database.transaction(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Credential)
                              .where(Credential.user_id == member.id)) == 0
    problem(tenant.admin.delete(f"/v1/users/{member.id}"), 404, "not_found")


def test_a_deleted_users_email_is_free_again(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "viewer")
    assert tenant.admin.delete(f"/v1/users/{member.id}").status_code == 204
    again = tenant.admin.post("/v1/users", json={"email": member.user["email"], "role": "viewer"})
    assert again.status_code == 201, again.text
    assert again.json()["id"] != member.id


def test_unknown_user_is_404(shared) -> None:  # type: ignore[no-untyped-def]
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"name": "x"}} if method == "PATCH" else {}
        problem(shared.admin.request(method, "/v1/users/usr_00000000000000000000000000000", **kwargs),
                404, "not_found")
