"""GET /v1/me: the caller's user, role and account, for every role (api.md §2)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from route_table import open_tenant
from userkit import ROLES, add_member, keys, problem


@pytest.fixture(scope="module")
def shared(server, backend) -> Iterator:  # type: ignore[no-untyped-def]
    tenant = open_tenant(server.base_url, backend)
    yield tenant
    tenant.close()


@pytest.mark.parametrize("role", ROLES)
def test_me_names_the_caller(shared, role: str) -> None:  # type: ignore[no-untyped-def]
    tenant = shared
    member = add_member(tenant, role)

    me = member.client.get("/v1/me")

    assert me.status_code == 200, me.text
    body = me.json()
    assert body["user"] == member.user
    assert body["role"] == body["user"]["role"] == role
    assert body["account"]["id"] == tenant.account_id
    assert body["account"]["name"] == tenant.admin.get("/v1/account").json()["name"]
    assert body["client_id"] == member.client_id
    assert me.headers["etag"].startswith('"')
    assert not any("secret" in key for key in keys(body))


def test_me_of_the_first_admin(tenant) -> None:  # type: ignore[no-untyped-def]
    body = tenant.admin.get("/v1/me").json()
    assert body["user"]["id"] == tenant.admin_user_id
    assert body["role"] == "admin"
    assert body["client_id"] == tenant.client_id


def test_me_follows_a_role_change_at_once(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "manager")
    thing = tenant.things(1)[0]
    assert member.client.patch(f"/v1/things/{thing['id']}", json={"name": "a"}).status_code == 200

    demoted = tenant.admin.patch(f"/v1/users/{member.id}", json={"role": "viewer"})
    assert demoted.status_code == 200, demoted.text

    # The role is read on every request, not frozen into the token.
    assert member.client.get("/v1/me").json()["role"] == "viewer"
    problem(member.client.patch(f"/v1/things/{thing['id']}", json={"name": "b"}), 403, "forbidden")


def test_me_of_two_accounts_never_mix(tenant, other_tenant) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = tenant.admin.get("/v1/me").json(), other_tenant.admin.get("/v1/me").json()
    assert mine["account"]["id"] == tenant.account_id
    assert theirs["account"]["id"] == other_tenant.account_id
    assert mine["user"]["id"] != theirs["user"]["id"]


def test_me_needs_a_token(tenant) -> None:  # type: ignore[no-untyped-def]
    response = httpx.get(f"{tenant.base_url}/v1/me")
    problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
