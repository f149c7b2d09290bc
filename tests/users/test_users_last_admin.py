"""An account always keeps one active admin (api.md §2: 412 `last_admin`)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from userkit import add_member, at_once, problem

from simplane.models import User

# The three ways to stop being an active admin.
LOSE_ADMIN = {
    "demote": ("PATCH", {"json": {"role": "manager"}}),
    "disable": ("PATCH", {"json": {"status": "DISABLED"}}),
    "delete": ("DELETE", {}),
}


def _lose_admin(client, user_id: str, how: str):  # type: ignore[no-untyped-def]
    method, kwargs = LOSE_ADMIN[how]
    return client.request(method, f"/v1/users/{user_id}", **kwargs)


@pytest.mark.parametrize("how", LOSE_ADMIN)
def test_the_last_admin_cannot_stop_being_one(tenant, how: str) -> None:  # type: ignore[no-untyped-def]
    before = tenant.admin.get(f"/v1/users/{tenant.admin_user_id}")

    body = problem(_lose_admin(tenant.admin, tenant.admin_user_id, how), 412, "last_admin")

    assert tenant.admin_user_id in body["detail"]
    after = tenant.admin.get(f"/v1/users/{tenant.admin_user_id}")
    assert after.status_code == 200
    assert after.headers["etag"] == before.headers["etag"]
    assert _active_admins(tenant) == 1


@pytest.mark.parametrize("how", LOSE_ADMIN)
def test_an_admin_can_go_while_another_active_admin_stays(tenant, how: str) -> None:  # type: ignore[no-untyped-def]
    second = add_member(tenant, "admin")

    answer = _lose_admin(second.client, tenant.admin_user_id, how)

    assert answer.status_code in (200, 204), answer.text
    # Now the second admin is the last one.
    problem(_lose_admin(second.client, second.id, how), 412, "last_admin")
    assert second.client.get("/v1/me").json()["role"] == "admin"


@pytest.mark.parametrize("how", LOSE_ADMIN)
def test_an_admin_may_remove_themselves_when_another_admin_stays(tenant, how: str) -> None:  # type: ignore[no-untyped-def]
    second = add_member(tenant, "admin")
    answer = _lose_admin(second.client, second.id, how)
    assert answer.status_code in (200, 204), answer.text
    assert tenant.admin.get("/v1/me").json()["role"] == "admin"


def test_a_disabled_admin_does_not_count(tenant) -> None:  # type: ignore[no-untyped-def]
    second = add_member(tenant, "admin")
    disabled = tenant.admin.patch(f"/v1/users/{second.id}", json={"status": "DISABLED"})
    assert disabled.status_code == 200, disabled.text

    for how in LOSE_ADMIN:
        problem(_lose_admin(tenant.admin, tenant.admin_user_id, how), 412, "last_admin")

    # A disabled admin can be deleted, demoted or re-enabled freely: it guards nothing.
    enabled = tenant.admin.patch(f"/v1/users/{second.id}", json={"status": "ACTIVE"})
    assert enabled.status_code == 200 and enabled.json()["role"] == "admin"


def test_promoting_and_demoting_other_users_is_free(tenant) -> None:  # type: ignore[no-untyped-def]
    member = add_member(tenant, "viewer")
    for role in ("admin", "billing", "manager"):
        answer = tenant.admin.patch(f"/v1/users/{member.id}", json={"role": role})
        assert answer.status_code == 200 and answer.json()["role"] == role, answer.text


@pytest.mark.parametrize("how", LOSE_ADMIN)
def test_two_admins_removing_each_other_at_once_leave_one(tenant, how: str) -> None:  # type: ignore[no-untyped-def]
    second = add_member(tenant, "admin")

    answers = at_once(lambda: _lose_admin(tenant.admin, second.id, how),
                      lambda: _lose_admin(second.client, tenant.admin_user_id, how))

    statuses = sorted(a.status_code for a in answers)
    # The later one finds itself the last admin (412), or no longer an admin at all: demoted
    # (403), disabled or deleted (401). Never both through.
    assert statuses[0] in (200, 204) and statuses[1] in (401, 403, 412), \
        [a.text for a in answers]
    assert _active_admins(tenant) == 1


def _active_admins(tenant) -> int:  # type: ignore[no-untyped-def]
    with tenant.backend.database.transaction(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(User).where(
            User.account_id == tenant.account_id, User.role == "admin", User.status == "ACTIVE"))
