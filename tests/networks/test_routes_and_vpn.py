"""Routes (longest prefix wins) and IPSec VPN tunnels: PSK handling, proposals, overlap,
the routes a tunnel brings, and the peer configuration."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
from netkit import (
    add_pool,
    created,
    fields,
    locked,
    make_network,
    network_with_pool,
    problem,
    things_on,
)
from sqlalchemy import select

from simplane.core import crypto
from simplane.models import VpnTunnel

PSK = "Tr0ub4dor&3-horse-battery"


def _tunnel(**body: Any) -> dict[str, Any]:
    return {"name": "hq", "remote_gateway": "8.8.4.4", "remote_subnets": ["172.20.0.0/24"],
            "psk": PSK, **body}


def _routes(client, network_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = client.get(f"/v1/networks/{network_id}/routes", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _trace(client, network_id: str, source: str, destination: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.post(f"/v1/networks/{network_id}/trace", json={
        "direction": "OUTBOUND", "protocol": "TCP", "source_ip": source, "source_port": 40000,
        "destination_ip": destination, "destination_port": 443})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def scratch(lab) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A Network for requests that must be refused: nothing may ever appear in it."""
    return make_network(lab.admin)


# --- routes --------------------------------------------------------------------------------

def test_route_crud_and_duplicate_destination(lab):
    net = make_network(lab.admin)
    url = f"/v1/networks/{net['id']}/routes"
    route = created(lab.admin.post(url, json={"destination": "192.0.2.0/24",
                                              "target": "INTERNET"}))
    assert (route["destination"], route["target"], route["vpn_tunnel_id"]) == (
        "192.0.2.0/24", "INTERNET", None)
    got = lab.admin.get(f"{url}/{route['id']}")
    assert got.status_code == 200 and got.json() == route
    body = problem(lab.admin.post(url, json={"destination": "192.0.2.0/24",
                                             "target": "INTERNET"}), 412, "conflict")
    assert route["id"] in body["detail"]
    assert [r["id"] for r in _routes(lab.admin, net["id"])] == [route["id"]]
    problem(lab.admin.delete(f"{url}/{route['id']}", headers={"If-Match": '"x"'}), 412,
            "etag_mismatch")
    assert lab.admin.delete(f"{url}/{route['id']}").status_code == 204
    problem(lab.admin.get(f"{url}/{route['id']}"), 404, "not_found")
    assert _routes(lab.admin, net["id"]) == []


@pytest.mark.parametrize("body", [
    {"destination": "192.0.2.1/24", "target": "INTERNET"},
    {"destination": "192.0.2.0/33", "target": "INTERNET"},
    {"destination": "192.0.2.0/24", "target": "NOWHERE"},
    {"destination": "192.0.2.0/24", "target": "VPN_TUNNEL"},
    {"destination": "192.0.2.0/24", "target": "INTERNET", "vpn_tunnel_id": "vpn_x"},
])
def test_invalid_routes_are_400(lab, scratch, body):
    net = scratch
    problem(lab.admin.post(f"/v1/networks/{net['id']}/routes", json=body), 400)
    assert _routes(lab.admin, net["id"]) == []


def test_a_vpn_route_needs_a_tunnel_of_this_network(lab):
    net = make_network(lab.admin)
    other = make_network(lab.admin)
    theirs = created(lab.admin.post(f"/v1/networks/{other['id']}/vpn-tunnels", json=_tunnel()))
    url = f"/v1/networks/{net['id']}/routes"
    for tunnel_id in (theirs["id"], "vpn_" + "0" * 29):
        body = problem(lab.admin.post(url, json={"destination": "172.21.0.0/16",
                                                 "target": "VPN_TUNNEL",
                                                 "vpn_tunnel_id": tunnel_id}),
                       400, "unknown_reference")
        assert "vpn_tunnel_id" in fields(body)
    ours = created(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json=_tunnel()))
    route = created(lab.admin.post(url, json={"destination": "172.21.0.0/16",
                                              "target": "VPN_TUNNEL",
                                              "vpn_tunnel_id": ours["id"]}))
    assert route["vpn_tunnel_id"] == ours["id"]


def test_longest_prefix_wins(lab):
    net, _ = network_with_pool(lab.admin, 29)
    thing = things_on(lab, net["id"])[0]
    source = locked(lab.admin, thing["id"])
    wide = created(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels",
                                  json=_tunnel(remote_subnets=["172.22.0.0/16"])))
    wide_route = next(r for r in _routes(lab.admin, net["id"]) if r["vpn_tunnel_id"])
    narrow = created(lab.admin.post(f"/v1/networks/{net['id']}/routes", json={
        "destination": "172.22.5.0/24", "target": "INTERNET"}))

    into_wide = _trace(lab.admin, net["id"], source, "172.22.6.9")
    route_step = next(s for s in into_wide["steps"] if s["stage"] == "route")
    assert route_step["rule_id"] == wide_route["id"] and wide["id"] in route_step["detail"]
    assert into_wide["translated"]["source_ip"] == source  # no NAT into a tunnel

    into_narrow = _trace(lab.admin, net["id"], source, "172.22.5.9")
    route_step = next(s for s in into_narrow["steps"] if s["stage"] == "route")
    assert route_step["rule_id"] == narrow["id"] and "INTERNET" in route_step["detail"]
    assert into_narrow["translated"]["source_ip"] == net["nat_public_ip"]

    elsewhere = _trace(lab.admin, net["id"], source, "9.9.9.9")
    route_step = next(s for s in elsewhere["steps"] if s["stage"] == "route")
    assert route_step["rule_id"] is None and "0.0.0.0/0" in route_step["detail"]

    # An explicit default route into the tunnel replaces the implicit one.
    default = created(lab.admin.post(f"/v1/networks/{net['id']}/routes", json={
        "destination": "0.0.0.0/0", "target": "VPN_TUNNEL", "vpn_tunnel_id": wide["id"]}))
    elsewhere = _trace(lab.admin, net["id"], source, "9.9.9.9")
    route_step = next(s for s in elsewhere["steps"] if s["stage"] == "route")
    assert route_step["rule_id"] == default["id"]
    assert elsewhere["translated"]["source_ip"] == source


# --- VPN tunnels ---------------------------------------------------------------------------

def test_tunnel_representation_and_its_routes(lab):
    net, pool = network_with_pool(lab.admin, 27)
    url = f"/v1/networks/{net['id']}/vpn-tunnels"
    tunnel = created(lab.admin.post(url, json=_tunnel(
        remote_subnets=["172.23.0.0/24", "172.23.8.0/22"], dpd_seconds=15)))
    settings = lab.backend.settings
    assert (tunnel["name"], tunnel["remote_gateway"], tunnel["ike_version"], tunnel["status"],
            tunnel["dpd_seconds"], tunnel["local_gateway"]) == (
        "hq", "8.8.4.4", 2, "DOWN", 15, settings.vpn_gateway_ip)
    assert tunnel["local_subnets"] == [pool["cidr"]]
    assert tunnel["ike_proposals"] and tunnel["esp_proposals"]
    assert "psk" not in tunnel

    routes = _routes(lab.admin, net["id"])
    assert sorted((r["destination"], r["target"], r["vpn_tunnel_id"]) for r in routes) == [
        ("172.23.0.0/24", "VPN_TUNNEL", tunnel["id"]),
        ("172.23.8.0/22", "VPN_TUNNEL", tunnel["id"])]

    # Local subnets follow the Network's pools until set.
    more = add_pool(lab.admin, net["id"], prefix_length=28)
    got = lab.admin.get(f"{url}/{tunnel['id']}").json()
    assert sorted(got["local_subnets"]) == sorted([pool["cidr"], more["cidr"]])

    patched = lab.admin.patch(f"{url}/{tunnel['id']}", json={
        "remote_subnets": ["172.23.16.0/24"], "local_subnets": [pool["cidr"]]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["local_subnets"] == [pool["cidr"]]
    assert [(r["destination"], r["vpn_tunnel_id"]) for r in _routes(lab.admin, net["id"])] == [
        ("172.23.16.0/24", tunnel["id"])]
    back = lab.admin.patch(f"{url}/{tunnel['id']}", json={"local_subnets": None})
    assert sorted(back.json()["local_subnets"]) == sorted([pool["cidr"], more["cidr"]])

    problem(lab.admin.patch(f"{url}/{tunnel['id']}", json={"name": "x"},
                            headers={"If-Match": '"stale"'}), 412, "etag_mismatch")
    problem(lab.admin.delete(f"{url}/{tunnel['id']}", headers={"If-Match": '"stale"'}), 412,
            "etag_mismatch")
    etag = lab.admin.get(f"{url}/{tunnel['id']}").headers["etag"]
    assert lab.admin.delete(f"{url}/{tunnel['id']}", headers={"If-Match": etag}).status_code == 204
    assert _routes(lab.admin, net["id"]) == []
    problem(lab.admin.get(f"{url}/{tunnel['id']}"), 404, "not_found")


def test_psk_is_write_only_and_encrypted_at_rest(lab):
    net, _ = network_with_pool(lab.admin, 29)
    url = f"/v1/networks/{net['id']}/vpn-tunnels"
    encoded = base64.b64encode(PSK.encode()).decode()
    seen: list[str] = []
    posted = lab.admin.post(url, json=_tunnel())
    tunnel = created(posted)
    seen.append(posted.text)
    new_psk = "an0ther-pre-shared-key!"
    patched = lab.admin.patch(f"{url}/{tunnel['id']}", json={"psk": new_psk})
    assert patched.status_code == 200, patched.text
    seen.append(patched.text)
    viewer = lab.client("viewer")
    for client in (lab.admin, viewer):
        seen.append(client.get(url).text)
        seen.append(client.get(f"{url}/{tunnel['id']}").text)
    seen.append(viewer.get(f"{url}/{tunnel['id']}/peer-config").text)
    seen.append(lab.admin.get("/v1/audit-log", params={"limit": 1000}).text)
    seen.append(lab.admin.get("/v1/events", params={"limit": 1000}).text)
    for text in seen:
        for secret in (PSK, new_psk, encoded, base64.b64encode(new_psk.encode()).decode()):
            assert secret not in text

    with lab.backend.database.transaction() as session:
        stored = session.scalar(select(VpnTunnel.psk_encrypted).where(
            VpnTunnel.id == tunnel["id"]))
    assert stored and new_psk not in stored and PSK not in stored
    assert base64.b64encode(new_psk.encode()).decode() not in stored
    assert crypto.decrypt(lab.backend.settings.resolved_secret_key(), stored) == new_psk


@pytest.mark.parametrize("psk", ["x" * 15, "x" * 129, None])
def test_psk_length_is_16_to_128(lab, scratch, psk):
    net = scratch
    body = _tunnel(psk=psk)
    if psk is None:
        del body["psk"]
    assert "psk" in {f.split(".")[-1] for f in fields(problem(
        lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json=body), 400))}


@pytest.mark.parametrize("field,proposal,named", [
    ("ike_proposals", "aes999-sha256-modp2048", "aes999"),
    ("ike_proposals", "aes256-sha256-modp2047", "modp2047"),
    ("ike_proposals", "aes256-sha256", "key exchange"),
    ("ike_proposals", "aes256-modp2048", "integrity"),
    ("ike_proposals", "sha256-modp2048", "encryption"),
    ("ike_proposals", "aes256gcm16-ecp256", "PRF"),
    ("ike_proposals", "aes256-sha256_96-modp2048", "PRF"),
    ("ike_proposals", "aes256-sha256-modp2048-esn", "esn"),
    ("esp_proposals", "aes256-sha256-prfsha256", "prfsha256"),
    ("esp_proposals", "aes256gcm16-aes128-sha256", "AEAD"),
    ("esp_proposals", "aes256-sha256;modp2048", "sha256;modp2048"),
])
def test_proposals_are_validated(lab, scratch, field, proposal, named):
    net = scratch
    good = "aes256-sha256-modp2048"
    body = problem(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels",
                                  json=_tunnel(**{field: [good, proposal]})), 400)
    assert f"{field}.1" in fields(body), body
    assert named in body["detail"], body
    assert lab.admin.get(f"/v1/networks/{net['id']}/vpn-tunnels").json()["items"] == []


def test_good_proposals_are_stored_lower_case(lab):
    net = make_network(lab.admin)
    tunnel = created(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json=_tunnel(
        ike_proposals=["AES256GCM16-PRFSHA384-ECP384", "aes128-sha256-x25519"],
        esp_proposals=["aes256gcm16-modp2048-esn", "aes128-sha1"])))
    assert tunnel["ike_proposals"] == ["aes256gcm16-prfsha384-ecp384", "aes128-sha256-x25519"]
    assert tunnel["esp_proposals"] == ["aes256gcm16-modp2048-esn", "aes128-sha1"]


@pytest.mark.parametrize("change", [
    {"remote_gateway": "10.1.2.3"}, {"remote_gateway": "203.0.113.9"},
    {"remote_gateway": "vpn.example.com"}, {"remote_subnets": []},
    {"remote_subnets": ["172.24.0.0/16", "172.24.1.0/24"]}, {"remote_subnets": ["172.24.0.1/16"]},
    {"ike_version": 1}, {"dpd_seconds": 1},
])
def test_invalid_tunnels_are_400(lab, scratch, change):
    net = scratch
    problem(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json=_tunnel(**change)), 400)
    assert lab.admin.get(f"/v1/networks/{net['id']}/vpn-tunnels").json()["items"] == []


def test_remote_subnets_may_not_overlap_the_pools(lab):
    net, pool = network_with_pool(lab.admin, 28)
    url = f"/v1/networks/{net['id']}/vpn-tunnels"
    inside = str(ipaddress.IPv4Network(pool["cidr"]).supernet(new_prefix=16))
    body = problem(lab.admin.post(url, json=_tunnel(remote_subnets=["172.25.0.0/24", inside])),
                   412, "overlap")
    assert inside in body["detail"] and pool["cidr"] in body["detail"]
    assert lab.admin.get(url).json()["items"] == [] and _routes(lab.admin, net["id"]) == []

    tunnel = created(lab.admin.post(url, json=_tunnel(remote_subnets=["172.25.0.0/24"])))
    problem(lab.admin.patch(f"{url}/{tunnel['id']}", json={"remote_subnets": [pool["cidr"]]}),
            412, "overlap")
    assert lab.admin.get(f"{url}/{tunnel['id']}").json()["remote_subnets"] == ["172.25.0.0/24"]


def test_pools_may_not_grow_into_remote_subnets(lab):
    # Hold a /28, then keep only its lower half: the upper half is surely free allocation.
    net, wide = network_with_pool(lab.admin, 28)
    assert lab.admin.delete(f"/v1/networks/{net['id']}/ip-pools/{wide['id']}").status_code == 204
    lower, upper = (str(s) for s in ipaddress.IPv4Network(wide["cidr"]).subnets(new_prefix=29))
    pool = add_pool(lab.admin, net["id"], cidr=lower)
    neighbour = upper
    url = f"/v1/networks/{net['id']}/vpn-tunnels"
    tunnel = created(lab.admin.post(url, json=_tunnel(remote_subnets=[neighbour])))
    body = problem(lab.admin.patch(f"/v1/networks/{net['id']}/ip-pools/{pool['id']}",
                                   json={"prefix_length": 28}), 412, "overlap")
    assert tunnel["id"] in body["detail"]
    body = problem(lab.admin.post(f"/v1/networks/{net['id']}/ip-pools",
                                  json={"cidr": neighbour}), 412, "overlap")
    assert neighbour in body["detail"]


def test_carving_skips_remote_subnets(lab):
    # The lowest free /28 of the allocation, freed again: the next carve would take it.
    net, probe = network_with_pool(lab.admin, 28)
    assert lab.admin.delete(f"/v1/networks/{net['id']}/ip-pools/{probe['id']}").status_code == 204
    created(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels",
                           json=_tunnel(remote_subnets=[probe["cidr"]])))
    carved = add_pool(lab.admin, net["id"], prefix_length=28)
    assert not ipaddress.IPv4Network(carved["cidr"]).overlaps(
        ipaddress.IPv4Network(probe["cidr"]))
    # Another Network of the account may still pool that block: the tunnel is not its.
    other = make_network(lab.admin)
    assert add_pool(lab.admin, other["id"], prefix_length=28)["cidr"] == probe["cidr"]


def test_a_tunnel_route_clashing_with_a_route_creates_nothing(lab):
    net = make_network(lab.admin)
    created(lab.admin.post(f"/v1/networks/{net['id']}/routes",
                           json={"destination": "172.26.0.0/24", "target": "INTERNET"}))
    url = f"/v1/networks/{net['id']}/vpn-tunnels"
    problem(lab.admin.post(url, json=_tunnel(remote_subnets=["172.26.0.0/24"])), 412, "conflict")
    assert lab.admin.get(url).json()["items"] == []
    assert len(_routes(lab.admin, net["id"])) == 1


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_peer_config_includes_the_psk_for_admin_and_manager(lab, role):
    net, pool = network_with_pool(lab.admin, 29)
    tunnel = created(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json=_tunnel()))
    response = lab.client(role).get(
        f"/v1/networks/{net['id']}/vpn-tunnels/{tunnel['id']}/peer-config",
        params={"format": "swanctl"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    text = response.text
    secret = next(line.split("=", 1)[1].strip() for line in text.splitlines()
                  if line.strip().startswith("secret ="))
    assert secret.startswith("0s") and base64.b64decode(secret[2:]).decode() == PSK
    assert f"remote_addrs = {lab.backend.settings.vpn_gateway_ip}" in text
    assert "local_ts = 172.20.0.0/24" in text and f"remote_ts = {pool['cidr']}" in text


def test_peer_config_leaves_the_psk_out_for_a_viewer(lab):
    net, _ = network_with_pool(lab.admin, 29)
    tunnel = created(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json=_tunnel()))
    url = f"/v1/networks/{net['id']}/vpn-tunnels/{tunnel['id']}/peer-config"
    response = lab.client("viewer").get(url)
    assert response.status_code == 200, response.text
    assert PSK not in response.text
    assert base64.b64encode(PSK.encode()).decode() not in response.text
    assert "secret = " in response.text and "0s" not in response.text.split("secret = ")[1]
    problem(lab.admin.get(url, params={"format": "ipsec.conf"}), 400)
