"""The Thing state machine of api.md §4: every cell of the table, history, events, side effects."""

from __future__ import annotations

import pytest
from thingkit import bring_to, each, events_of, history_of, problem, set_thing, snapshot

STATES = ["PROVISIONED", "ACTIVE", "SUSPENDED", "RETIRED"]
ALLOWED = {
    ("PROVISIONED", "ACTIVE"), ("PROVISIONED", "RETIRED"),
    ("ACTIVE", "SUSPENDED"), ("ACTIVE", "RETIRED"),
    ("SUSPENDED", "ACTIVE"), ("SUSPENDED", "RETIRED"),
}
CELLS = [(a, b) for a in STATES for b in STATES]


def _kind(cell: tuple[str, str]) -> str:
    if cell[0] == cell[1]:
        return "same"
    return "allowed" if cell in ALLOWED else "refused"


@pytest.mark.parametrize(("from_state", "to_state"), CELLS,
                         ids=[f"{a}->{b}:{_kind((a, b))}" for a, b in CELLS])
def test_state_table_cell(tenant, from_state: str, to_state: str) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    bring_to(client, thing_id, from_state)
    before, etag = snapshot(client, thing_id)
    history = history_of(client, thing_id)
    events = events_of(client, thing_id, "thing.state_changed")

    response = client.patch(f"/v1/things/{thing_id}", json={"state": to_state})
    kind = _kind((from_state, to_state))

    if kind == "refused":
        body = problem(response, 412, "invalid_state_transition")
        assert from_state in body["detail"] and to_state in body["detail"]
        assert snapshot(client, thing_id) == (before, etag)
        assert history_of(client, thing_id) == history
        assert events_of(client, thing_id, "thing.state_changed") == events
        return

    assert response.status_code == 200, response.text
    assert response.json()["state"] == to_state
    after, new_etag = snapshot(client, thing_id)
    assert after == response.json()
    assert response.headers["etag"] == new_etag

    if kind == "same":
        assert (after, new_etag) == (before, etag)
        assert history_of(client, thing_id) == history
        assert events_of(client, thing_id, "thing.state_changed") == events
        return

    assert new_etag != etag
    assert after["updated_at"] > before["updated_at"]
    new_history = history_of(client, thing_id)
    assert new_history[:-1] == history
    row = new_history[-1]
    assert (row["from_state"], row["to_state"]) == (from_state, to_state)
    assert row["actor_user_id"] == tenant.admin_user_id
    assert row["actor_client_id"] == tenant.client_id
    assert row["source"] == "api"
    new_events = events_of(client, thing_id, "thing.state_changed")
    assert new_events[:-1] == events
    event = new_events[-1]
    assert event["thing_id"] == thing_id
    assert event["data"]["from"] == from_state and event["data"]["to"] == to_state
    assert event["occurred_at"] == row["changed_at"]


def test_shipping_records_the_first_history_row(tenant) -> None:
    thing = tenant.things(1)[0]
    assert thing["state"] == "PROVISIONED"
    assert thing["activated_at"] is None
    (row,) = history_of(tenant.admin, thing["id"])
    assert (row["from_state"], row["to_state"], row["source"]) == (None, "PROVISIONED", "operator")
    assert row["actor_user_id"] is None


def test_history_names_the_user_who_made_each_change(tenant) -> None:
    manager = tenant.client("manager")
    thing_id = tenant.things(1)[0]["id"]
    assert tenant.admin.patch(f"/v1/things/{thing_id}", json={"state": "ACTIVE"}).status_code == 200
    assert manager.patch(f"/v1/things/{thing_id}", json={"state": "SUSPENDED"}).status_code == 200
    rows = history_of(tenant.admin, thing_id)
    assert [r["to_state"] for r in rows] == ["PROVISIONED", "ACTIVE", "SUSPENDED"]
    me = manager.get("/v1/me").json()
    assert rows[1]["actor_user_id"] == tenant.admin_user_id
    assert rows[2]["actor_user_id"] == me["user"]["id"] != tenant.admin_user_id
    assert rows[2]["actor_client_id"] == me["client_id"] != tenant.client_id
    assert rows[2]["changed_at"] >= rows[1]["changed_at"]


def test_state_history_pages_and_hides_other_accounts(tenant, other_tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    for state in ("ACTIVE", "SUSPENDED", "ACTIVE", "SUSPENDED"):
        assert tenant.admin.patch(f"/v1/things/{thing_id}",
                                  json={"state": state}).status_code == 200
    seen, params = [], {"limit": 2}
    while True:
        page = tenant.admin.get(f"/v1/things/{thing_id}/state-history", params=params)
        assert page.status_code == 200, page.text
        seen += [r["to_state"] for r in page.json()["items"]]
        if not page.json()["next_cursor"]:
            assert "link" not in page.headers
            break
        assert 'rel="next"' in page.headers["link"]
        params["cursor"] = page.json()["next_cursor"]
    assert seen == ["PROVISIONED", "ACTIVE", "SUSPENDED", "ACTIVE", "SUSPENDED"]
    problem(other_tenant.admin.get(f"/v1/things/{thing_id}/state-history"), 404, "not_found")


def test_activated_at_is_set_on_first_activation_only(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    first = client.patch(f"/v1/things/{thing_id}", json={"state": "ACTIVE"}).json()
    assert first["activated_at"] is not None
    assert first["activated_at"] == first["updated_at"]
    suspended = client.patch(f"/v1/things/{thing_id}", json={"state": "SUSPENDED"}).json()
    assert suspended["activated_at"] == first["activated_at"]
    again = client.patch(f"/v1/things/{thing_id}", json={"state": "ACTIVE"}).json()
    assert again["state"] == "ACTIVE"
    assert again["activated_at"] == first["activated_at"]
    assert again["updated_at"] > first["updated_at"]
    retired = client.patch(f"/v1/things/{thing_id}", json={"state": "RETIRED"}).json()
    assert retired["activated_at"] == first["activated_at"]


def test_retiring_a_never_activated_thing_leaves_activated_at_empty(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    retired = tenant.admin.patch(f"/v1/things/{thing_id}", json={"state": "RETIRED"})
    assert retired.status_code == 200, retired.text
    assert retired.json()["activated_at"] is None


@pytest.mark.parametrize("from_state", ["PROVISIONED", "ACTIVE", "SUSPENDED"])
def test_retiring_releases_a_locked_ip(tenant, from_state: str) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    bring_to(client, thing_id, from_state)
    set_thing(tenant, thing_id, ip_locked=True, ip_address="100.64.0.17")
    assert client.get(f"/v1/things/{thing_id}").json()["ip_locked"] is True

    retired = client.patch(f"/v1/things/{thing_id}", json={"state": "RETIRED"})
    assert retired.status_code == 200, retired.text
    assert retired.json()["ip_locked"] is False
    assert retired.json()["ip_address"] is None
    (unlocked,) = events_of(client, thing_id, "thing.ip_unlocked")
    assert unlocked["data"]["ip_address"] == "100.64.0.17"
    changed = events_of(client, thing_id, "thing.state_changed")[-1]
    assert changed["data"]["to"] == "RETIRED"
    # The consumer sees the retirement before its consequence.
    all_events = events_of(client, thing_id)
    assert [e["type"] for e in all_events[-2:]] == ["thing.state_changed", "thing.ip_unlocked"]
    released = client.get("/v1/things", params={"ip_address": "100.64.0.17"}).json()["items"]
    assert released == []


def test_retiring_without_a_lock_emits_no_unlock(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    assert tenant.admin.patch(f"/v1/things/{thing_id}",
                              json={"state": "RETIRED"}).status_code == 200
    assert events_of(tenant.admin, thing_id, "thing.ip_unlocked") == []


def test_retired_is_terminal(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    bring_to(client, thing_id, "RETIRED")
    group_id = client.post("/v1/things-groups", json={"name": "g"}).json()["id"]
    before = snapshot(client, thing_id)

    def check(patch: dict, named: str) -> None:
        body = problem(client.patch(f"/v1/things/{thing_id}", json=patch),
                       412, "invalid_state_transition")
        assert named in body["detail"]

    each([({"services": {"data": False}}, "services"), ({"imei_lock": True}, "imei_lock"),
          ({"things_group_id": group_id}, "things_group_id"), ({"state": "ACTIVE"}, "ACTIVE"),
          ({"state": "SUSPENDED", "name": "x"}, "SUSPENDED"),
          ({"state": "PROVISIONED"}, "PROVISIONED")], check)
    assert snapshot(client, thing_id) == before


def test_retired_thing_can_still_be_renamed_and_tagged(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    bring_to(client, thing_id, "RETIRED")
    response = client.patch(f"/v1/things/{thing_id}",
                            json={"name": "scrapped", "tags": ["returned"], "state": "RETIRED"})
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["tags"]) == ("scrapped", ["returned"])
    assert response.json()["state"] == "RETIRED"


def test_refused_transition_with_other_fields_changes_nothing(tenant) -> None:
    """A PATCH is all or nothing: a valid rename beside a refused transition is not applied."""
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    before = snapshot(client, thing_id)
    response = client.patch(f"/v1/things/{thing_id}", json={
        "name": "renamed", "tags": ["a"], "services": {"sms": False}, "state": "SUSPENDED"})
    problem(response, 412, "invalid_state_transition")
    assert snapshot(client, thing_id) == before
