"""Things Groups (api.md §5): CRUD, account defaults, references, the delete rules, ETags."""

from __future__ import annotations

import pytest
from thingkit import (
    add_ip_profile,
    add_network,
    default_group,
    each,
    group_counts,
    problem,
    set_thing,
    snapshot,
)


def _create(client, **body) -> dict:  # type: ignore[no-untyped-def]
    response = client.post("/v1/things-groups", json={"name": "sensors", **body})
    assert response.status_code == 201, response.text
    return response.json()


def _groups(client) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get("/v1/things-groups", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _get(client, group_id: str) -> tuple[dict, str]:  # type: ignore[no-untyped-def]
    response = client.get(f"/v1/things-groups/{group_id}")
    assert response.status_code == 200, response.text
    return response.json(), response.headers["etag"]


def test_every_account_has_one_default_group(tenant) -> None:
    (group,) = _groups(tenant.admin)
    assert group["is_default"] is True
    assert group["thing_count"] == 0
    assert group["network_id"].startswith("net_") and group["ip_profile_id"].startswith("ipp_")


def test_create_uses_the_account_defaults(tenant) -> None:
    client = tenant.admin
    default = default_group(client)
    response = client.post("/v1/things-groups", json={"name": "meters"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/things-groups/{body['id']}"
    assert body["id"].startswith("grp_")
    assert (body["name"], body["description"], body["is_default"], body["thing_count"]) == (
        "meters", "", False, 0)
    assert body["network_id"] == default["network_id"]
    assert body["ip_profile_id"] == default["ip_profile_id"]
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert _get(client, body["id"]) == (body, etag)
    fetched = client.get(response.headers["location"])
    assert fetched.status_code == 200 and fetched.json() == body


def test_create_with_explicit_network_and_profile(tenant) -> None:
    network_id = add_network(tenant)
    profile_id = add_ip_profile(tenant)
    body = _create(tenant.admin, name="vpn", description="behind the VPN",
                   network_id=network_id, ip_profile_id=profile_id)
    assert (body["network_id"], body["ip_profile_id"]) == (network_id, profile_id)
    assert body["description"] == "behind the VPN"


def test_create_with_unknown_reference(tenant, other_tenant) -> None:
    before = _groups(tenant.admin)
    theirs = default_group(other_tenant.admin)

    def check(field: str, value: str) -> None:
        body = problem(tenant.admin.post("/v1/things-groups", json={"name": "x", field: value}),
                       400, "unknown_reference")
        assert [e["field"] for e in body["errors"]] == [field]
        assert value in body["detail"]

    each([("network_id", "net_" + "0" * 29), ("ip_profile_id", "ipp_" + "0" * 29),
          ("network_id", theirs["network_id"]), ("ip_profile_id", theirs["ip_profile_id"])],
         check)
    assert _groups(tenant.admin) == before


def test_create_validation(tenant) -> None:
    before = _groups(tenant.admin)

    def check(payload: dict, field: str) -> None:
        body = problem(tenant.admin.post("/v1/things-groups", json=payload),
                       400, "validation_error")
        assert [e["field"] for e in body["errors"]] == [field], body

    each([({}, "name"), ({"name": ""}, "name"), ({"name": None}, "name"), ({"name": 7}, "name"),
          ({"name": "x" * 201}, "name"), ({"name": "x", "description": None}, "description"),
          ({"name": "x", "network_id": None}, "network_id"),
          ({"name": "x", "network_id": ""}, "network_id"),
          ({"name": "x", "ip_profile_id": 3}, "ip_profile_id"),
          ({"name": "x", "is_default": True}, "is_default"),
          ({"name": "x", "thing_count": 3}, "thing_count")], check)
    assert _groups(tenant.admin) == before


def test_create_rejects_malformed_json(tenant) -> None:
    response = tenant.admin.post("/v1/things-groups", content=b'{"name": ',
                                 headers={"content-type": "application/json"})
    problem(response, 400, "validation_error")


def test_list_pages_in_creation_order(tenant) -> None:
    client = tenant.admin
    created = [_create(client, name=f"g{i}")["id"] for i in range(4)]
    expected = [default_group(client)["id"], *created]
    seen, params = [], {"limit": 2}
    while True:
        page = client.get("/v1/things-groups", params=params)
        assert page.status_code == 200, page.text
        seen += [g["id"] for g in page.json()["items"]]
        if page.json()["next_cursor"] is None:
            assert "link" not in page.headers
            break
        assert page.headers["link"].endswith('>; rel="next"')
        params["cursor"] = page.json()["next_cursor"]
    assert seen == expected
    problem(client.get("/v1/things-groups", params={"limit": 0}), 400, "validation_error")
    problem(client.get("/v1/things-groups", params={"cursor": "nope"}), 400, "validation_error")


def test_thing_count_follows_the_things(tenant) -> None:
    client = tenant.admin
    things = tenant.things(3)
    default_id = things[0]["things_group_id"]
    group = _create(client)
    for thing in things[:2]:
        client.patch(f"/v1/things/{thing['id']}", json={"things_group_id": group["id"]})
    assert _get(client, group["id"])[0]["thing_count"] == 2
    assert group_counts(client) == {default_id: 1, group["id"]: 2}
    tenant.ship(2)
    assert group_counts(client) == {default_id: 3, group["id"]: 2}


def test_patch_name_description_and_profile(tenant) -> None:
    client = tenant.admin
    group, etag = _get(client, _create(client)["id"])
    profile_id = add_ip_profile(tenant)
    response = client.patch(f"/v1/things-groups/{group['id']}", json={
        "name": "renamed", "description": "d", "ip_profile_id": profile_id})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["description"], body["ip_profile_id"]) == (
        "renamed", "d", profile_id)
    assert body["network_id"] == group["network_id"]
    assert body["updated_at"] >= group["updated_at"]
    assert response.headers["etag"] != etag
    assert _get(client, group["id"]) == (body, response.headers["etag"])


def test_refused_patch_changes_nothing(tenant) -> None:
    client = tenant.admin
    group = _create(client)
    before = _get(client, group["id"])

    def check(payload: dict, code: str, field: str) -> None:
        body = problem(client.patch(f"/v1/things-groups/{group['id']}", json=payload), 400, code)
        assert [e["field"] for e in body["errors"]] == [field]

    each([({"name": None}, "validation_error", "name"),
          ({"name": ""}, "validation_error", "name"),
          ({"description": 5}, "validation_error", "description"),
          ({"network_id": None}, "validation_error", "network_id"),
          ({"is_default": True}, "validation_error", "is_default"),
          ({"name": "ok", "network_id": "net_" + "0" * 29}, "unknown_reference", "network_id"),
          ({"ip_profile_id": "ipp_" + "0" * 29}, "unknown_reference", "ip_profile_id")], check)
    assert _get(client, group["id"]) == before


def test_default_group_can_be_renamed_but_not_deleted(tenant) -> None:
    client = tenant.admin
    default = default_group(client)
    renamed = client.patch(f"/v1/things-groups/{default['id']}", json={"name": "Main"})
    assert renamed.status_code == 200 and renamed.json()["is_default"] is True
    body = problem(client.delete(f"/v1/things-groups/{default['id']}"), 412, "default_resource")
    assert default["id"] in body["detail"]
    assert _get(client, default["id"])[0]["name"] == "Main"


def test_group_with_things_cannot_be_deleted(tenant) -> None:
    client = tenant.admin
    thing = tenant.things(1)[0]
    group = _create(client)
    client.patch(f"/v1/things/{thing['id']}", json={"things_group_id": group["id"]})
    problem(client.delete(f"/v1/things-groups/{group['id']}"), 412, "in_use")
    assert _get(client, group["id"])[0]["thing_count"] == 1
    # Retired Things still belong to the group and still count.
    client.patch(f"/v1/things/{thing['id']}", json={"state": "RETIRED"})
    problem(client.delete(f"/v1/things-groups/{group['id']}"), 412, "in_use")


def test_empty_group_is_deleted(tenant) -> None:
    client = tenant.admin
    thing = tenant.things(1)[0]
    group = _create(client)
    client.patch(f"/v1/things/{thing['id']}", json={"things_group_id": group["id"]})
    client.patch(f"/v1/things/{thing['id']}", json={"things_group_id": thing["things_group_id"]})
    response = client.delete(f"/v1/things-groups/{group['id']}")
    assert response.status_code == 204, response.text
    assert response.content == b""
    problem(client.get(f"/v1/things-groups/{group['id']}"), 404, "not_found")
    problem(client.delete(f"/v1/things-groups/{group['id']}"), 404, "not_found")
    assert [g["id"] for g in _groups(client)] == [thing["things_group_id"]]


def test_network_change_refused_while_things_hold_locked_ips(tenant) -> None:
    client = tenant.admin
    locked, dynamic = tenant.things(2)
    group = _create(client)
    for thing in (locked, dynamic):
        client.patch(f"/v1/things/{thing['id']}", json={"things_group_id": group["id"]})
    set_thing(tenant, locked["id"], ip_locked=True, ip_address="100.64.4.1")
    set_thing(tenant, dynamic["id"], ip_address="100.64.4.2")
    before = _get(client, group["id"])
    things_before = [snapshot(client, t["id"]) for t in (locked, dynamic)]
    body = problem(client.patch(f"/v1/things-groups/{group['id']}",
                                json={"network_id": add_network(tenant), "name": "moved"}),
                   412, "ip_locked")
    assert locked["id"] in body["detail"]
    assert _get(client, group["id"]) == before
    assert [snapshot(client, t["id"]) for t in (locked, dynamic)] == things_before


def test_network_change_releases_dynamic_leases_of_its_things(tenant) -> None:
    client = tenant.admin
    inside, outside = tenant.things(2)
    group = _create(client)
    client.patch(f"/v1/things/{inside['id']}", json={"things_group_id": group["id"]})
    set_thing(tenant, inside["id"], ip_address="100.64.5.1")
    set_thing(tenant, outside["id"], ip_address="100.64.5.2")
    network_id = add_network(tenant)
    response = client.patch(f"/v1/things-groups/{group['id']}", json={"network_id": network_id})
    assert response.status_code == 200, response.text
    assert response.json()["network_id"] == network_id
    assert snapshot(client, inside["id"])[0]["ip_address"] is None
    assert snapshot(client, outside["id"])[0]["ip_address"] == "100.64.5.2"


def test_locked_ips_do_not_block_a_rename(tenant) -> None:
    client = tenant.admin
    thing = tenant.things(1)[0]
    default = default_group(client)
    set_thing(tenant, thing["id"], ip_locked=True, ip_address="100.64.6.1")
    same_network = client.patch(f"/v1/things-groups/{default['id']}",
                                json={"name": "n", "network_id": default["network_id"]})
    assert same_network.status_code == 200, same_network.text
    assert snapshot(client, thing["id"])[0]["ip_address"] == "100.64.6.1"


# --- ETag / If-Match -------------------------------------------------------------------------

def test_if_match_on_patch(tenant) -> None:
    client = tenant.admin
    group = _create(client)
    _, etag = _get(client, group["id"])
    ok = client.patch(f"/v1/things-groups/{group['id']}", json={"name": "v2"},
                      headers={"If-Match": etag})
    assert ok.status_code == 200, ok.text
    assert ok.headers["etag"] != etag
    before = _get(client, group["id"])
    body = problem(client.patch(f"/v1/things-groups/{group['id']}", json={"name": "v3"},
                                headers={"If-Match": etag}), 412, "etag_mismatch")
    assert etag in body["detail"]
    assert _get(client, group["id"]) == before == (ok.json(), ok.headers["etag"])


def test_if_match_on_delete(tenant) -> None:
    client = tenant.admin
    group = _create(client)
    _, stale = _get(client, group["id"])
    client.patch(f"/v1/things-groups/{group['id']}", json={"description": "changed"})
    problem(client.delete(f"/v1/things-groups/{group['id']}", headers={"If-Match": stale}),
            412, "etag_mismatch")
    _, current = _get(client, group["id"])
    deleted = client.delete(f"/v1/things-groups/{group['id']}", headers={"If-Match": current})
    assert deleted.status_code == 204, deleted.text


def test_etag_changes_with_thing_count(tenant) -> None:
    client = tenant.admin
    group = _create(client)
    _, etag = _get(client, group["id"])
    thing = tenant.things(1)[0]
    client.patch(f"/v1/things/{thing['id']}", json={"things_group_id": group["id"]})
    problem(client.patch(f"/v1/things-groups/{group['id']}", json={"name": "x"},
                         headers={"If-Match": etag}), 412, "etag_mismatch")


# --- tenancy and roles -----------------------------------------------------------------------

def test_other_accounts_group_is_404(tenant, other_tenant) -> None:
    client = tenant.admin
    group = _create(client)
    before = _get(client, group["id"])
    outsider = other_tenant.admin
    for response in (outsider.get(f"/v1/things-groups/{group['id']}"),
                     outsider.patch(f"/v1/things-groups/{group['id']}", json={"name": "x"}),
                     outsider.delete(f"/v1/things-groups/{group['id']}")):
        problem(response, 404, "not_found")
    assert group["id"] not in [g["id"] for g in _groups(outsider)]
    assert _get(client, group["id"]) == before


@pytest.mark.parametrize("role", ["viewer", "billing"])
def test_readers_cannot_write_groups(tenant, role: str) -> None:
    group = _create(tenant.admin)
    reader = tenant.client(role)
    assert reader.get(f"/v1/things-groups/{group['id']}").status_code == 200
    problem(reader.post("/v1/things-groups", json={"name": "x"}), 403, "forbidden")
    problem(reader.patch(f"/v1/things-groups/{group['id']}", json={"name": "x"}), 403, "forbidden")
    problem(reader.delete(f"/v1/things-groups/{group['id']}"), 403, "forbidden")
    assert len(_groups(tenant.admin)) == 2


def test_manager_manages_groups(tenant) -> None:
    manager = tenant.client("manager")
    group = _create(manager)
    assert manager.patch(f"/v1/things-groups/{group['id']}",
                         json={"name": "m"}).status_code == 200
    assert manager.delete(f"/v1/things-groups/{group['id']}").status_code == 204
