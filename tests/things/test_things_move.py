"""Moving a Thing between Things Groups (PATCH things_group_id) and what it does to its IP."""

from __future__ import annotations

import pytest
from thingkit import add_network, events_of, group_counts, problem, set_thing, snapshot


def _group(client, **body) -> dict:  # type: ignore[no-untyped-def]
    response = client.post("/v1/things-groups", json={"name": "target", **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_move_to_a_group_of_the_account(tenant) -> None:
    client = tenant.admin
    first, second = tenant.things(2)
    default_id = first["things_group_id"]
    target = _group(client)
    assert group_counts(client) == {default_id: 2, target["id"]: 0}

    response = client.patch(f"/v1/things/{first['id']}", json={"things_group_id": target["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["things_group_id"] == target["id"]
    assert snapshot(client, first["id"])[0]["things_group_id"] == target["id"]
    assert group_counts(client) == {default_id: 1, target["id"]: 1}
    listed = client.get("/v1/things", params={"things_group_id": target["id"]}).json()["items"]
    assert [t["id"] for t in listed] == [first["id"]]
    assert snapshot(client, second["id"])[0]["things_group_id"] == default_id

    back = client.patch(f"/v1/things/{first['id']}", json={"things_group_id": default_id})
    assert back.json()["things_group_id"] == default_id
    assert group_counts(client) == {default_id: 2, target["id"]: 0}


def test_move_within_one_network_keeps_the_ip(tenant) -> None:
    client = tenant.admin
    thing = tenant.things(1)[0]
    target = _group(client)
    set_thing(tenant, thing["id"], ip_locked=True, ip_address="100.64.1.9")
    moved = client.patch(f"/v1/things/{thing['id']}", json={"things_group_id": target["id"]})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["ip_address"], moved.json()["ip_locked"]) == ("100.64.1.9", True)


@pytest.mark.parametrize("which", ["missing", "other_account"])
def test_move_to_an_unknown_group_is_400_and_changes_nothing(tenant, other_tenant,
                                                             which: str) -> None:
    client = tenant.admin
    thing = tenant.things(1)[0]
    if which == "missing":
        group_id = "grp_00000000000000000000000000000"
    else:
        group_id = other_tenant.admin.get("/v1/things-groups").json()["items"][0]["id"]
    before = snapshot(client, thing["id"])
    counts = group_counts(client)
    response = client.patch(f"/v1/things/{thing['id']}",
                            json={"things_group_id": group_id, "name": "moved"})
    body = problem(response, 400, "unknown_reference")
    assert body["errors"][0]["field"] == "things_group_id"
    assert group_id in body["detail"]
    assert snapshot(client, thing["id"]) == before
    assert group_counts(client) == counts
    if which == "other_account":
        other_counts = group_counts(other_tenant.admin)
        assert other_counts[group_id] == 0


def test_locked_ip_cannot_move_to_another_network(tenant) -> None:
    client = tenant.admin
    thing = tenant.things(1)[0]
    elsewhere = _group(client, network_id=add_network(tenant))
    set_thing(tenant, thing["id"], ip_locked=True, ip_address="100.64.2.3")
    before = snapshot(client, thing["id"])
    counts = group_counts(client)
    response = client.patch(f"/v1/things/{thing['id']}",
                            json={"things_group_id": elsewhere["id"], "tags": ["x"]})
    body = problem(response, 412, "ip_locked")
    assert "100.64.2.3" in body["detail"]
    assert snapshot(client, thing["id"]) == before
    assert group_counts(client) == counts
    assert events_of(client, thing["id"]) == []


def test_move_to_another_network_releases_the_dynamic_lease(tenant) -> None:
    client = tenant.admin
    thing = tenant.things(1)[0]
    elsewhere = _group(client, network_id=add_network(tenant))
    set_thing(tenant, thing["id"], ip_locked=False, ip_address="100.64.3.4")
    before, etag = snapshot(client, thing["id"])
    assert before["ip_address"] == "100.64.3.4"
    moved = client.patch(f"/v1/things/{thing['id']}", json={"things_group_id": elsewhere["id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["ip_address"] is None
    assert moved.json()["things_group_id"] == elsewhere["id"]
    assert moved.headers["etag"] != etag
    assert snapshot(client, thing["id"])[0]["ip_address"] is None
    assert client.get("/v1/things", params={"ip_address": "100.64.3.4"}).json()["items"] == []


def test_move_with_refused_transition_is_not_applied(tenant) -> None:
    client = tenant.admin
    thing = tenant.things(1)[0]
    target = _group(client)
    before = snapshot(client, thing["id"])
    problem(client.patch(f"/v1/things/{thing['id']}",
                         json={"things_group_id": target["id"], "state": "SUSPENDED"}),
            412, "invalid_state_transition")
    assert snapshot(client, thing["id"]) == before
    assert group_counts(client)[target["id"]] == 0
