"""GET /v1/events (api.md §11): shape, filters type / thing_id / since, paging, tenancy, roles."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
from thingkit import each, problem, set_thing


def _events(client, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get("/v1/events", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _cycle(client: httpx.Client, thing_id: str,
           states: tuple[str, ...] = ("ACTIVE", "SUSPENDED", "ACTIVE")) -> None:
    for state in states:
        response = client.patch(f"/v1/things/{thing_id}", json={"state": state})
        assert response.status_code == 200, response.text


def test_event_shape_and_order(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    _cycle(tenant.admin, thing_id)
    events = _events(tenant.admin)
    assert [(e["data"]["from"], e["data"]["to"]) for e in events] == [
        ("PROVISIONED", "ACTIVE"), ("ACTIVE", "SUSPENDED"), ("SUSPENDED", "ACTIVE")]
    for event in events:
        assert set(event) == {"id", "type", "occurred_at", "thing_id", "data"}
        assert event["id"].startswith("evt_")
        assert event["type"] == "thing.state_changed"
        assert event["thing_id"] == thing_id
        assert event["occurred_at"].endswith("Z")
        assert event["data"]["actor_user_id"] == tenant.admin_user_id
    assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)
    assert len({e["id"] for e in events}) == 3


def test_filter_by_type(tenant) -> None:
    client = tenant.admin
    locked, plain = tenant.things(2)
    set_thing(tenant, locked["id"], ip_locked=True, ip_address="100.64.10.1")
    _cycle(client, locked["id"], ("RETIRED",))
    _cycle(client, plain["id"], ("ACTIVE",))
    unlocked = _events(client, type="thing.ip_unlocked")
    assert [(e["type"], e["thing_id"]) for e in unlocked] == [("thing.ip_unlocked", locked["id"])]
    assert unlocked[0]["data"]["ip_address"] == "100.64.10.1"
    changed = _events(client, type="thing.state_changed")
    assert [(e["thing_id"], e["data"]["to"]) for e in changed] == [
        (locked["id"], "RETIRED"), (plain["id"], "ACTIVE")]
    assert _events(client, type="sms.received") == []
    assert len(_events(client)) == 3


def test_unknown_type_is_400_naming_it(tenant) -> None:
    def check(value: str) -> None:
        body = problem(tenant.admin.get("/v1/events", params={"type": value}), 400,
                       "validation_error")
        assert [e["field"] for e in body["errors"]] == ["type"]
        assert repr(value) in body["detail"]

    each([("thing.exploded",), ("THING.STATE_CHANGED",), ("",), ("thing",)], check)


def test_filter_by_thing(tenant) -> None:
    client = tenant.admin
    first, second = tenant.things(2)
    _cycle(client, first["id"], ("ACTIVE",))
    _cycle(client, second["id"], ("ACTIVE", "SUSPENDED"))
    assert [e["data"]["to"] for e in _events(client, thing_id=second["id"])] == [
        "ACTIVE", "SUSPENDED"]
    assert [e["thing_id"] for e in _events(client, thing_id=first["id"])] == [first["id"]]
    assert _events(client, thing_id="thg_00000000000000000000000000000") == []
    both = _events(client, thing_id=second["id"], type="thing.state_changed")
    assert len(both) == 2


def test_filter_since(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    _cycle(client, thing_id, ("ACTIVE", "SUSPENDED", "ACTIVE", "RETIRED"))
    events = _events(client)
    pivot = events[2]["occurred_at"]
    assert [e["id"] for e in _events(client, since=pivot)] == [e["id"] for e in events[2:]]
    instant = datetime.fromisoformat(pivot.replace("Z", "+00:00"))
    with_offset = instant.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert "+02:00" in with_offset
    assert [e["id"] for e in _events(client, since=with_offset)] == [e["id"] for e in events[2:]]
    just_after = (instant + timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")
    assert [e["id"] for e in _events(client, since=just_after)] == [e["id"] for e in events[3:]]
    assert _events(client, since="2000-01-01T00:00:00Z") == events
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _events(client, since=future) == []
    combined = _events(client, since=pivot, thing_id=thing_id, type="thing.state_changed")
    assert [e["data"]["to"] for e in combined] == ["ACTIVE", "RETIRED"]


def test_bad_query_values_are_400_naming_them(tenant) -> None:
    def check(name: str, value: str) -> None:
        body = problem(tenant.admin.get("/v1/events", params={name: value}), 400,
                       "validation_error")
        assert [e["field"] for e in body["errors"]] == [name]
        assert value in body["detail"]

    each([("since", "yesterday"), ("since", "2024-13-01T00:00:00Z"),
          ("since", "2024-01-01T25:00:00Z"), ("limit", "0"), ("limit", "1001"),
          ("cursor", "garbage")], check)


def test_paging_walks_every_event_once(tenant) -> None:
    client = tenant.admin
    things = tenant.things(2)
    for thing in things:
        _cycle(client, thing["id"], ("ACTIVE", "SUSPENDED"))
    expected = [e["id"] for e in _events(client)]
    assert len(expected) == 4
    seen, params = [], {"limit": 3}
    while True:
        page = client.get("/v1/events", params=params)
        assert page.status_code == 200, page.text
        seen += [e["id"] for e in page.json()["items"]]
        if page.json()["next_cursor"] is None:
            assert "link" not in page.headers
            break
        assert page.headers["link"].endswith('>; rel="next"')
        params["cursor"] = page.json()["next_cursor"]
        # Events arriving during the walk come after the ones already listed.
        _cycle(client, things[0]["id"], ("ACTIVE",) if len(seen) == 3 else ())
    assert seen[:4] == expected
    assert len(seen) == len(set(seen)) == 5


def test_paging_keeps_filters(tenant) -> None:
    client = tenant.admin
    first, second = tenant.things(2)
    _cycle(client, first["id"], ("ACTIVE", "SUSPENDED", "ACTIVE"))
    _cycle(client, second["id"], ("ACTIVE",))
    seen, params = [], {"limit": 1, "thing_id": first["id"]}
    while True:
        page = client.get("/v1/events", params=params)
        seen += [e["thing_id"] for e in page.json()["items"]]
        if not page.json()["next_cursor"]:
            break
        assert f"thing_id={first['id']}" in page.headers["link"]
        params["cursor"] = page.json()["next_cursor"]
    assert seen == [first["id"]] * 3


def test_events_are_scoped_to_the_account(tenant, other_tenant) -> None:
    mine = tenant.things(1)[0]
    theirs = other_tenant.things(1)[0]
    _cycle(tenant.admin, mine["id"], ("ACTIVE",))
    _cycle(other_tenant.admin, theirs["id"], ("ACTIVE", "SUSPENDED"))
    assert [e["thing_id"] for e in _events(tenant.admin)] == [mine["id"]]
    assert _events(tenant.admin, thing_id=theirs["id"]) == []
    assert len(_events(other_tenant.admin)) == 2


def test_refused_and_same_state_requests_emit_nothing(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    client.patch(f"/v1/things/{thing_id}", json={"state": "PROVISIONED"})
    client.patch(f"/v1/things/{thing_id}", json={"state": "SUSPENDED"})
    client.patch(f"/v1/things/{thing_id}", json={"name": "quiet", "tags": ["t"]})
    assert _events(client) == []


def test_roles(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    _cycle(tenant.admin, thing_id, ("ACTIVE",))

    def check(role: str, status: int) -> None:
        response = tenant.client(role).get("/v1/events")
        assert response.status_code == status, response.text
        if status == 200:
            assert len(response.json()["items"]) == 1

    each([("manager", 200), ("viewer", 200), ("billing", 403)], check)
