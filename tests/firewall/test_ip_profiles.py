"""IP Profiles CRUD (api.md §7): representation, defaults, paging, ETags, refusals, roles."""

from __future__ import annotations

import pytest
from fwkit import PROBLEM, add_rule, assert_bad_request, make_profile


def test_new_account_has_a_default_profile_that_allows_everything(tenant) -> None:
    items = tenant.admin.get("/v1/ip-profiles").json()["items"]
    assert len(items) == 1
    default = items[0]
    assert default["is_default"] is True
    assert default["inbound"] == {"default_action": "ALLOW", "rules": []}
    assert default["outbound"] == {"default_action": "ALLOW", "rules": []}
    assert default["things_group_count"] == 1  # the default group


def test_create_get_patch_delete(account) -> None:
    client = account.admin
    created = client.post("/v1/ip-profiles", json={
        "name": "Meters", "description": "only the head end",
        "inbound": {"default_action": "DENY"}})
    assert created.status_code == 201, created.text
    profile = created.json()
    assert created.headers["Location"] == f"/v1/ip-profiles/{profile['id']}"
    assert created.headers["ETag"]
    assert profile["id"].startswith("ipp_")
    assert profile["name"] == "Meters"
    assert profile["description"] == "only the head end"
    assert profile["is_default"] is False
    assert profile["inbound"] == {"default_action": "DENY", "rules": []}
    assert profile["outbound"] == {"default_action": "ALLOW", "rules": []}
    assert profile["things_group_count"] == 0

    fetched = client.get(f"/v1/ip-profiles/{profile['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == profile
    assert fetched.headers["ETag"] == created.headers["ETag"]

    patched = client.patch(f"/v1/ip-profiles/{profile['id']}", json={
        "name": "Meters v2", "outbound": {"default_action": "DENY"}},
        headers={"If-Match": fetched.headers["ETag"]})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "Meters v2"
    assert body["description"] == "only the head end"
    assert body["inbound"]["default_action"] == "DENY"
    assert body["outbound"]["default_action"] == "DENY"
    assert body["updated_at"] > profile["updated_at"]
    assert patched.headers["ETag"] != fetched.headers["ETag"]

    deleted = client.delete(f"/v1/ip-profiles/{profile['id']}",
                            headers={"If-Match": patched.headers["ETag"]})
    assert deleted.status_code == 204
    assert client.get(f"/v1/ip-profiles/{profile['id']}").status_code == 404


def test_profile_embeds_its_rules_per_chain(account) -> None:
    profile = make_profile(account.admin)
    first = add_rule(account.admin, profile["id"], chain="INBOUND", action="ALLOW",
                     protocol="TCP", ports="443", remote_cidr="192.0.2.0/24")
    second = add_rule(account.admin, profile["id"], chain="OUTBOUND", action="DENY")
    body = account.admin.get(f"/v1/ip-profiles/{profile['id']}").json()
    assert body["inbound"]["rules"] == [first]
    assert body["outbound"]["rules"] == [second]


def test_stale_if_match_changes_nothing(account) -> None:
    profile = make_profile(account.admin, name="Before")
    stale = account.admin.get(f"/v1/ip-profiles/{profile['id']}").headers["ETag"]
    # A rule change alters the profile's representation, so its ETag too.
    add_rule(account.admin, profile["id"])
    for response in (
        account.admin.patch(f"/v1/ip-profiles/{profile['id']}", json={"name": "After"},
                           headers={"If-Match": stale}),
        account.admin.delete(f"/v1/ip-profiles/{profile['id']}", headers={"If-Match": stale}),
    ):
        assert response.status_code == 412, response.text
        assert response.json()["code"] == "etag_mismatch"
    assert account.admin.get(f"/v1/ip-profiles/{profile['id']}").json()["name"] == "Before"


def test_list_pages_in_creation_order(tenant) -> None:
    created = [make_profile(tenant.admin, name=f"p{i}")["id"] for i in range(3)]
    first = tenant.admin.get("/v1/ip-profiles", params={"limit": 2})
    assert first.status_code == 200
    assert first.json()["next_cursor"]
    assert 'rel="next"' in first.headers["Link"]
    second = tenant.admin.get("/v1/ip-profiles",
                              params={"limit": 2, "cursor": first.json()["next_cursor"]})
    assert second.json()["next_cursor"] is None
    ids = [p["id"] for p in first.json()["items"] + second.json()["items"]]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert ids[1:] == created


def test_default_profile_cannot_be_deleted(account) -> None:
    default = account.admin.get("/v1/ip-profiles").json()["items"][0]
    assert default["is_default"] is True
    response = account.admin.delete(f"/v1/ip-profiles/{default['id']}")
    assert response.status_code == 412
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "default_resource"


def test_profile_used_by_a_group_cannot_be_deleted(account) -> None:
    profile = make_profile(account.admin)
    rule = add_rule(account.admin, profile["id"])
    group = account.admin.post("/v1/things-groups",
                              json={"name": "Meters", "ip_profile_id": profile["id"]})
    assert group.status_code == 201, group.text
    assert account.admin.get(f"/v1/ip-profiles/{profile['id']}").json()["things_group_count"] == 1

    refused = account.admin.delete(f"/v1/ip-profiles/{profile['id']}")
    assert refused.status_code == 412
    assert refused.json()["code"] == "in_use"
    assert account.admin.get(f"/v1/ip-profiles/{profile['id']}").status_code == 200

    assert account.admin.delete(f"/v1/things-groups/{group.json()['id']}").status_code == 204
    assert account.admin.delete(f"/v1/ip-profiles/{profile['id']}").status_code == 204
    # The profile's rules went with it.
    gone = account.admin.get(f"/v1/ip-profiles/{profile['id']}/rules/{rule['id']}")
    assert gone.status_code == 404


@pytest.mark.parametrize("body, field, mention", [
    ({}, "name", ""),
    ({"name": ""}, "name", ""),
    ({"name": "x", "inbound": {"default_action": "REJECT"}}, "inbound.default_action", "REJECT"),
    ({"name": "x", "inbound": {"default_action": "DENY", "rules": []}}, "inbound.rules",
     "unknown field"),
    ({"name": "x", "colour": "red"}, "colour", "unknown field"),
    ({"name": None}, "name", ""),
])
def test_create_validation(account, body, field, mention) -> None:
    assert_bad_request(account.admin.post("/v1/ip-profiles", json=body), field, mention)


def test_patch_validation_and_malformed_json(account) -> None:
    profile = make_profile(account.admin)
    url = f"/v1/ip-profiles/{profile['id']}"
    assert_bad_request(account.admin.patch(url, json={"outbound": {"default_action": "allow"}}),
                       "outbound.default_action", "allow")
    assert_bad_request(account.admin.patch(url, json={"is_default": True}), "is_default")
    malformed = account.admin.patch(url, content=b"{nope",
                                   headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "validation_error"
    assert account.admin.get(url).json() == profile


def test_another_accounts_profile_is_not_found(account, outsider) -> None:
    profile = make_profile(account.admin)
    url = f"/v1/ip-profiles/{profile['id']}"
    outsider = outsider.admin
    for response in (outsider.get(url), outsider.patch(url, json={"name": "mine"}),
                     outsider.delete(url),
                     outsider.get(f"{url}/rules"),
                     outsider.post(f"{url}/rules", json={"chain": "INBOUND", "action": "DENY"}),
                     outsider.post(f"{url}/evaluate", json={
                         "direction": "INBOUND", "protocol": "ICMP", "remote_ip": "192.0.2.1"})):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    assert profile["id"] not in [p["id"] for p in outsider.get("/v1/ip-profiles").json()["items"]]
    assert account.admin.get(url).json() == profile


def test_roles(account) -> None:
    profile = make_profile(account.admin)
    rule = add_rule(account.admin, profile["id"])
    url = f"/v1/ip-profiles/{profile['id']}"
    rule_url = f"{url}/rules/{rule['id']}"
    probe = {"direction": "INBOUND", "protocol": "TCP", "remote_ip": "192.0.2.1", "port": 22}

    def reads(client):  # type: ignore[no-untyped-def]
        return [client.get("/v1/ip-profiles"), client.get(url), client.get(f"{url}/rules"),
                client.get(rule_url), client.post(f"{url}/evaluate", json=probe)]

    def writes(client):  # type: ignore[no-untyped-def]
        return [client.post("/v1/ip-profiles", json={"name": "x"}),
                client.patch(url, json={"name": "y"}),
                client.post(f"{url}/rules", json={"chain": "OUTBOUND", "action": "DENY"}),
                client.patch(rule_url, json={"description": "z"}),
                client.delete(rule_url), client.delete(url)]

    viewer, billing, manager = (account.client(r) for r in ("viewer", "billing", "manager"))
    assert [r.status_code for r in reads(viewer)] == [200] * 5
    for client in (viewer, billing):
        for response in writes(client):
            assert response.status_code == 403, response.text
            assert response.json()["code"] == "forbidden"
    for response in reads(billing):
        assert response.status_code == 403, response.text
    assert account.admin.get(url).json()["name"] == profile["name"]

    statuses = [r.status_code for r in writes(manager)]
    assert statuses == [201, 200, 201, 200, 204, 204]
