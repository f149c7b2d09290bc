"""Networks: create/read/update/delete, the default and in-use rules, tenancy and roles."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from netkit import (
    add_pool,
    fields,
    locked,
    make_group,
    make_network,
    network_with_pool,
    problem,
    things_on,
)
from sqlalchemy import func, select

from simplane.models import IpPool, NatRule, Route, VpnTunnel

PSK = "correct horse battery staple"


def _default_network(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    items = client.get("/v1/networks").json()["items"]
    return next(n for n in items if n["is_default"])


def test_created_network_gets_its_own_nat_address_and_the_platform_settings(lab, stranger):
    settings = lab.backend.settings
    first = make_network(lab.admin, name="Field units")
    second = make_network(lab.admin, name="Meters", device_isolation=True,
                          dns_servers=["9.9.9.9"])
    default = _default_network(lab.admin)
    foreign = _default_network(stranger.admin)

    assert first["name"] == "Field units" and first["is_default"] is False
    assert first["apn"] == settings.apn and first["vpn_gateway_ip"] == settings.vpn_gateway_ip
    assert first["device_isolation"] is False and first["dns_servers"] == ["8.8.8.8", "1.1.1.1"]
    assert first["ip_pools"] == []
    assert second["device_isolation"] is True and second["dns_servers"] == ["9.9.9.9"]
    public = [first["nat_public_ip"], second["nat_public_ip"], default["nat_public_ip"],
              foreign["nat_public_ip"]]
    assert len(set(public)) == 4, public
    space = ipaddress.IPv4Network(settings.nat_public_range)
    assert all(ipaddress.IPv4Address(ip) in space for ip in public)

    # The default Network holds one pool carved from the account's allocation.
    allocation = lab.admin.get("/v1/account").json()["ip_quota"]["allocations"]
    assert len(default["ip_pools"]) == 1
    pool = ipaddress.IPv4Network(default["ip_pools"][0]["cidr"])
    assert any(pool.subnet_of(ipaddress.IPv4Network(a)) for a in allocation)


def test_get_list_patch_and_if_match(lab):
    net = make_network(lab.admin)
    url = f"/v1/networks/{net['id']}"
    got = lab.admin.get(url)
    assert got.status_code == 200 and got.json() == net
    etag = got.headers["etag"]

    listed = lab.admin.get("/v1/networks", params={"limit": 1000}).json()["items"]
    assert net["id"] in {n["id"] for n in listed}

    stale = lab.admin.patch(url, json={"name": "Stale"}, headers={"If-Match": '"nope"'})
    problem(stale, 412, "etag_mismatch")
    assert lab.admin.get(url).json()["name"] == net["name"]

    patched = lab.admin.patch(url, json={"name": "Renamed", "device_isolation": True,
                                         "dns_servers": ["1.0.0.1", "9.9.9.9"]},
                              headers={"If-Match": etag})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["name"], body["device_isolation"], body["dns_servers"]) == (
        "Renamed", True, ["1.0.0.1", "9.9.9.9"])
    assert body["nat_public_ip"] == net["nat_public_ip"]
    assert patched.headers["etag"] != etag
    assert lab.admin.get(url).json() == body


def test_lists_page_in_creation_order(lab):
    made = [make_network(lab.admin)["id"] for _ in range(3)]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = lab.admin.get("/v1/networks", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [n["id"] for n in body["items"]]
        if body["next_cursor"] is None:
            assert "link" not in page.headers
            break
        assert 'rel="next"' in page.headers["link"]
        params["cursor"] = body["next_cursor"]
    assert len(seen) == len(set(seen)) and seen[-3:] == made
    assert seen == [n["id"] for n in lab.admin.get(
        "/v1/networks", params={"limit": 1000}).json()["items"]]
    problem(lab.admin.get("/v1/networks", params={"limit": 0}), 400)
    problem(lab.admin.get(f"/v1/networks/{made[0]}/routes", params={"cursor": "garbage"}), 400)


@pytest.fixture(scope="module")
def scratch(lab) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A Network for requests that must be refused: it never changes."""
    return make_network(lab.admin)


@pytest.mark.parametrize("dns", [["8.8.8.8", "dns.example"], ["300.1.1.1"], ["::1"],
                                 ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4", "9.9.9.9"]])
def test_dns_servers_must_be_ipv4_addresses(lab, scratch, dns):
    before = len(lab.admin.get("/v1/networks", params={"limit": 1000}).json()["items"])
    body = problem(lab.admin.post("/v1/networks", json={"name": "bad", "dns_servers": dns}),
                   400)
    assert any(f.startswith("dns_servers") for f in fields(body)), body
    assert len(lab.admin.get("/v1/networks", params={"limit": 1000}).json()["items"]) == before

    net = scratch
    problem(lab.admin.patch(f"/v1/networks/{net['id']}", json={"dns_servers": dns}), 400)
    assert lab.admin.get(f"/v1/networks/{net['id']}").json()["dns_servers"] == net["dns_servers"]


def test_bad_dns_error_names_the_value(lab):
    body = problem(lab.admin.post("/v1/networks", json={"name": "x",
                                                          "dns_servers": ["8.8.8.8", "nope"]}),
                   400, "validation_error")
    assert "dns_servers.1" in fields(body) and "nope" in body["detail"]


def test_unknown_field_is_refused(lab):
    problem(lab.admin.post("/v1/networks", json={"name": "x", "apn": "mine"}), 400)
    problem(lab.admin.post("/v1/networks", json={"name": ""}), 400)


def test_default_network_cannot_be_deleted(lab):
    default = _default_network(lab.admin)
    body = problem(lab.admin.delete(f"/v1/networks/{default['id']}"), 412, "default_resource")
    assert default["id"] in body["detail"]
    assert lab.admin.get(f"/v1/networks/{default['id']}").status_code == 200


def test_network_used_by_a_group_cannot_be_deleted(lab):
    net = make_network(lab.admin)
    group = make_group(lab.admin, net["id"])
    body = problem(lab.admin.delete(f"/v1/networks/{net['id']}"), 412, "in_use")
    assert group["id"] in body["detail"]
    assert lab.admin.delete(f"/v1/things-groups/{group['id']}").status_code == 204
    assert lab.admin.delete(f"/v1/networks/{net['id']}").status_code == 204
    problem(lab.admin.get(f"/v1/networks/{net['id']}"), 404, "not_found")


def test_deleting_a_network_removes_its_pools_routes_and_tunnels(lab):
    net, pool = network_with_pool(lab.admin, 28)
    route = lab.admin.post(f"/v1/networks/{net['id']}/routes",
                           json={"destination": "192.0.2.0/24", "target": "INTERNET"})
    assert route.status_code == 201, route.text
    tunnel = lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json={
        "name": "hq", "remote_gateway": "8.8.4.4", "remote_subnets": ["172.31.0.0/24"],
        "psk": PSK})
    assert tunnel.status_code == 201, tunnel.text

    stale = lab.admin.delete(f"/v1/networks/{net['id']}", headers={"If-Match": '"old"'})
    problem(stale, 412, "etag_mismatch")
    assert lab.admin.delete(f"/v1/networks/{net['id']}").status_code == 204
    problem(lab.admin.get(f"/v1/networks/{net['id']}/ip-pools/{pool['id']}"), 404)
    with lab.backend.database.transaction() as session:
        for model in (IpPool, Route, VpnTunnel, NatRule):
            left = session.scalar(select(func.count()).select_from(model)
                                  .where(model.network_id == net["id"]))
            assert left == 0, model.__tablename__
    # The freed block can be pooled again.
    other = make_network(lab.admin)
    add_pool(lab.admin, other["id"], cidr=pool["cidr"])


def test_network_with_locked_addresses_cannot_be_deleted_after_its_group_moves_away(lab):
    # A group keeps its Network while a member holds a locked IP, so the Network stays in use.
    net, _ = network_with_pool(lab.admin, 28)
    thing = things_on(lab, net["id"])[0]
    locked(lab.admin, thing["id"])
    group = thing["things_group_id"]
    default = _default_network(lab.admin)
    problem(lab.admin.patch(f"/v1/things-groups/{group}", json={"network_id": default["id"]}),
            412, "ip_locked")
    problem(lab.admin.delete(f"/v1/networks/{net['id']}"), 412, "in_use")


# --- tenancy -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def foreign(stranger) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One of each resource under /v1/networks, in another account."""
    client = stranger.admin
    net, pool = network_with_pool(client, 28)
    thing = things_on(stranger, net["id"])[0]
    locked(client, thing["id"])
    route = client.post(f"/v1/networks/{net['id']}/routes",
                        json={"destination": "192.0.2.0/24", "target": "INTERNET"}).json()
    rule = client.post(f"/v1/networks/{net['id']}/nat-rules", json={
        "protocol": "TCP", "public_port": 2222, "thing_id": thing["id"], "private_port": 22})
    assert rule.status_code == 201, rule.text
    tunnel = client.post(f"/v1/networks/{net['id']}/vpn-tunnels", json={
        "name": "hq", "remote_gateway": "8.8.4.4", "remote_subnets": ["172.30.0.0/24"],
        "psk": PSK})
    assert tunnel.status_code == 201, tunnel.text
    return {"network": net["id"], "pool": pool["id"], "route": route["id"],
            "rule": rule.json()["id"], "tunnel": tunnel.json()["id"], "thing": thing["id"]}


def _requests(net: str, ids: dict[str, str]) -> list[tuple[str, str, dict | None]]:
    base = f"/v1/networks/{net}"
    trace = {"direction": "OUTBOUND", "protocol": "ICMP", "source_ip": "10.0.0.2",
             "destination_ip": "1.1.1.1"}
    return [
        ("GET", base, None), ("PATCH", base, {"name": "x"}), ("DELETE", base, None),
        ("GET", f"{base}/ip-pools", None), ("POST", f"{base}/ip-pools", {"prefix_length": 29}),
        ("GET", f"{base}/ip-pools/{ids['pool']}", None),
        ("PATCH", f"{base}/ip-pools/{ids['pool']}", {"lease_seconds": 600}),
        ("DELETE", f"{base}/ip-pools/{ids['pool']}", None),
        ("GET", f"{base}/routes", None),
        ("POST", f"{base}/routes", {"destination": "198.18.0.0/16", "target": "INTERNET"}),
        ("GET", f"{base}/routes/{ids['route']}", None),
        ("DELETE", f"{base}/routes/{ids['route']}", None),
        ("GET", f"{base}/nat-rules", None),
        ("POST", f"{base}/nat-rules", {"protocol": "UDP", "public_port": 5000,
                                       "thing_id": ids["thing"], "private_port": 5000}),
        ("GET", f"{base}/nat-rules/{ids['rule']}", None),
        ("PATCH", f"{base}/nat-rules/{ids['rule']}", {"description": "x"}),
        ("DELETE", f"{base}/nat-rules/{ids['rule']}", None),
        ("GET", f"{base}/vpn-tunnels", None),
        ("POST", f"{base}/vpn-tunnels", {"name": "t", "remote_gateway": "8.8.8.8",
                                         "remote_subnets": ["172.29.0.0/24"], "psk": PSK}),
        ("GET", f"{base}/vpn-tunnels/{ids['tunnel']}", None),
        ("PATCH", f"{base}/vpn-tunnels/{ids['tunnel']}", {"name": "x"}),
        ("DELETE", f"{base}/vpn-tunnels/{ids['tunnel']}", None),
        ("GET", f"{base}/vpn-tunnels/{ids['tunnel']}/peer-config?format=swanctl", None),
        ("POST", f"{base}/trace", trace),
    ]


def test_another_accounts_network_answers_404_on_every_route(lab, foreign):
    for method, url, body in _requests(foreign["network"], foreign):
        response = lab.admin.request(method, url, json=body)
        problem(response, 404, "not_found")
        assert foreign["network"] in response.json()["detail"], (method, url)


def test_another_accounts_sub_resources_answer_404_under_an_own_network(lab, foreign):
    own, _ = network_with_pool(lab.admin, 29)
    for method, url, body in _requests(own["id"], foreign):
        if url.rstrip("/").endswith(own["id"]) or url.split("?")[0].endswith(
                ("/ip-pools", "/routes", "/nat-rules", "/vpn-tunnels", "/trace")):
            continue  # collection routes and the Network itself are ours
        response = lab.admin.request(method, url, json=body)
        problem(response, 404, "not_found")


def test_another_accounts_404_reads_like_a_missing_id(lab, foreign):
    missing = "net_" + "0" * 29
    theirs = lab.admin.get(f"/v1/networks/{foreign['network']}").json()
    nothing = lab.admin.get(f"/v1/networks/{missing}").json()
    assert theirs["detail"].replace(foreign["network"], "ID") == nothing["detail"].replace(
        missing, "ID")
    assert {k: v for k, v in theirs.items() if k != "detail"} == {
        k: v for k, v in nothing.items() if k != "detail"}


def test_another_accounts_thing_is_an_unknown_reference_for_nat(lab, foreign):
    own, _ = network_with_pool(lab.admin, 29)
    body = problem(lab.admin.post(f"/v1/networks/{own['id']}/nat-rules", json={
        "protocol": "TCP", "public_port": 8080, "thing_id": foreign["thing"],
        "private_port": 80}), 400, "unknown_reference")
    assert "thing_id" in fields(body)


def test_foreign_resources_are_unchanged_after_the_probe(stranger, foreign, lab):
    for method, url, body in _requests(foreign["network"], foreign):
        lab.admin.request(method, url, json=body)
    client = stranger.admin
    base = f"/v1/networks/{foreign['network']}"
    for suffix in ("", f"/ip-pools/{foreign['pool']}", f"/routes/{foreign['route']}",
                   f"/nat-rules/{foreign['rule']}", f"/vpn-tunnels/{foreign['tunnel']}"):
        assert client.get(base + suffix).status_code == 200, suffix
    assert client.get(f"{base}/nat-rules/{foreign['rule']}").json()["description"] == ""


# --- roles ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def staged(lab) -> dict[str, str]:  # type: ignore[no-untyped-def]
    net, pool = network_with_pool(lab.admin, 28)
    thing = things_on(lab, net["id"])[0]
    locked(lab.admin, thing["id"])
    base = f"/v1/networks/{net['id']}"
    route = lab.admin.post(f"{base}/routes",
                           json={"destination": "192.0.2.0/24", "target": "INTERNET"}).json()
    rule = lab.admin.post(f"{base}/nat-rules", json={
        "protocol": "TCP", "public_port": 2222, "thing_id": thing["id"], "private_port": 22}).json()
    tunnel = lab.admin.post(f"{base}/vpn-tunnels", json={
        "name": "hq", "remote_gateway": "8.8.4.4", "remote_subnets": ["172.30.0.0/24"],
        "psk": PSK}).json()
    return {"network": net["id"], "pool": pool["id"], "route": route["id"], "rule": rule["id"],
            "tunnel": tunnel["id"], "thing": thing["id"]}


@pytest.mark.parametrize("role", ["viewer", "billing"])
def test_viewer_and_billing_cannot_write(lab, staged, role):
    client = lab.client(role)
    for method, url, body in _requests(staged["network"], staged):
        if method == "GET" or url.endswith("/trace"):
            continue
        problem(client.request(method, url, json=body), 403)
    problem(client.post("/v1/networks", json={"name": "mine"}), 403)
    # Nothing was written.
    base = f"/v1/networks/{staged['network']}"
    for suffix in ("", f"/ip-pools/{staged['pool']}", f"/routes/{staged['route']}",
                   f"/nat-rules/{staged['rule']}", f"/vpn-tunnels/{staged['tunnel']}"):
        assert lab.admin.get(base + suffix).status_code == 200, suffix


def test_viewer_reads_every_network_route(lab, staged):
    viewer = lab.client("viewer")
    for method, url, body in _requests(staged["network"], staged):
        if method == "GET":
            assert viewer.get(url).status_code == 200, url
    traced = viewer.post(f"/v1/networks/{staged['network']}/trace", json={
        "direction": "OUTBOUND", "protocol": "ICMP", "source_ip": "192.0.2.1",
        "destination_ip": "1.1.1.1"})
    assert traced.status_code == 200, traced.text


def test_billing_cannot_read_networks(lab, staged):
    billing = lab.client("billing")
    problem(billing.get("/v1/networks"), 403)
    for method, url, body in _requests(staged["network"], staged):
        if method == "GET" or url.endswith("/trace"):
            problem(billing.request(method, url, json=body), 403)


def test_manager_may_write(lab, staged):
    manager = lab.client("manager")
    net = make_network(manager)
    add_pool(manager, net["id"], prefix_length=29)
    response = manager.patch(f"/v1/networks/{staged['network']}/nat-rules/{staged['rule']}",
                             json={"description": "ssh"})
    assert response.status_code == 200, response.text
    assert manager.delete(f"/v1/networks/{net['id']}").status_code == 204


DOCUMENTED = [
    ("post", "/v1/networks", ["nat_ip_exhausted"]),
    ("delete", "/v1/networks/{network_id}", ["default_resource", "in_use", "etag_mismatch"]),
    ("patch", "/v1/networks/{network_id}", ["etag_mismatch", "validation_error"]),
    ("post", "/v1/networks/{network_id}/ip-pools", ["overlap", "ip_quota_exceeded"]),
    ("patch", "/v1/networks/{network_id}/ip-pools/{pool_id}",
     ["overlap", "ip_quota_exceeded", "in_use", "etag_mismatch"]),
    ("delete", "/v1/networks/{network_id}/ip-pools/{pool_id}", ["in_use", "etag_mismatch"]),
    ("post", "/v1/networks/{network_id}/routes", ["conflict", "unknown_reference"]),
    ("post", "/v1/networks/{network_id}/nat-rules",
     ["ip_not_locked", "not_on_network", "conflict", "unknown_reference"]),
    ("patch", "/v1/networks/{network_id}/nat-rules/{rule_id}", ["conflict", "etag_mismatch"]),
    ("post", "/v1/networks/{network_id}/vpn-tunnels", ["overlap", "conflict"]),
    ("patch", "/v1/networks/{network_id}/vpn-tunnels/{tunnel_id}", ["overlap", "conflict"]),
    ("post", "/v1/networks/{network_id}/trace", ["validation_error", "not_found"]),
]


def test_openapi_documents_the_codes_these_routes_answer(lab):
    paths = lab.admin.get("/openapi.json").json()["paths"]
    for method, path, codes in DOCUMENTED:
        text = json.dumps(paths[path][method]["responses"])
        for code in codes + ["not_found", "forbidden"]:
            assert f"`{code}`" in text, (method, path, code)
    peer = paths["/v1/networks/{network_id}/vpn-tunnels/{tunnel_id}/peer-config"]["get"]
    assert "text/plain" in peer["responses"]["200"]["content"]
