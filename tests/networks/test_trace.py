"""POST /v1/networks/{id}/trace: every path of network.md §3, each step naming what decided."""

from __future__ import annotations

from typing import Any

import pytest
from netkit import (
    created,
    fields,
    locked,
    make_group,
    network_with_pool,
    problem,
    things_on,
)

VPN_SUBNET = "172.27.0.0/24"
INTERNET_HOST = "203.0.113.50"


def _rule(client, profile_id: str, **body: Any) -> str:  # type: ignore[no-untyped-def]
    return created(client.post(f"/v1/ip-profiles/{profile_id}/rules", json=body))["id"]


@pytest.fixture(scope="module")
def plant(lab) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A Network with Things A and B under an open profile and C under a strict one, a VPN
    tunnel, and NAT rules to A and C."""
    client = lab.admin
    net, _ = network_with_pool(client, 27)
    strict = created(client.post("/v1/ip-profiles", json={"name": "strict"}))
    rules = {
        "out_smtp": _rule(client, strict["id"], chain="OUTBOUND", action="DENY", protocol="TCP",
                          ports="25"),
        "in_vpn_ssh": _rule(client, strict["id"], chain="INBOUND", action="ALLOW",
                            protocol="TCP", remote_cidr="172.27.0.0/25", ports="22"),
        "in_ssh": _rule(client, strict["id"], chain="INBOUND", action="DENY", protocol="TCP",
                        ports="22"),
    }
    open_group = make_group(client, net["id"])
    strict_group = make_group(client, net["id"], ip_profile_id=strict["id"])
    a, b = things_on(lab, net["id"], 2, group=open_group)
    c = things_on(lab, net["id"], 1, group=strict_group)[0]
    ips = {name: locked(client, thing["id"]) for name, thing in (("a", a), ("b", b), ("c", c))}
    tunnel = created(client.post(f"/v1/networks/{net['id']}/vpn-tunnels", json={
        "name": "hq", "remote_gateway": "8.8.4.4", "remote_subnets": [VPN_SUBNET],
        "psk": "0123456789abcdef"}))
    route = next(r for r in client.get(f"/v1/networks/{net['id']}/routes").json()["items"]
                 if r["vpn_tunnel_id"] == tunnel["id"])
    nat = {}
    for name, thing, public, private in (("a", a, 8443, 443), ("c", c, 2222, 22)):
        nat[name] = created(client.post(f"/v1/networks/{net['id']}/nat-rules", json={
            "protocol": "TCP", "public_port": public, "thing_id": thing["id"],
            "private_port": private}))["id"]
    return {"net": net, "ips": ips, "things": {"a": a, "b": b, "c": c}, "tunnel": tunnel,
            "vpn_route": route["id"], "nat": nat, "rules": rules, "strict": strict["id"]}


def trace(client, net: dict[str, Any], direction: str, source: str, destination: str,  # type: ignore[no-untyped-def]
          port: int | None = 443, protocol: str = "TCP") -> dict[str, Any]:
    body: dict[str, Any] = {"direction": direction, "protocol": protocol, "source_ip": source,
                            "destination_ip": destination}
    if protocol != "ICMP":
        body |= {"source_port": 40000, "destination_port": port}
    response = client.post(f"/v1/networks/{net['id']}/trace", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def stages(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["stage"], s["result"]) for s in result["steps"]]


def step(result: dict[str, Any], stage: str) -> dict[str, Any]:
    return next(s for s in result["steps"] if s["stage"] == stage)


def test_outbound_to_the_internet_is_source_natted(lab, plant):
    net, a = plant["net"], plant["ips"]["a"]
    result = trace(lab.admin, net, "OUTBOUND", a, "9.9.9.9")
    assert (result["verdict"], result["reason"]) == ("ALLOW", "allowed")
    assert stages(result) == [("source", "ALLOW"), ("outbound_firewall", "ALLOW"),
                              ("route", "ALLOW"), ("source_nat", "ALLOW")]
    assert plant["things"]["a"]["id"] in step(result, "source")["detail"]
    assert step(result, "outbound_firewall")["rule_id"] is None  # the default action
    assert step(result, "route")["rule_id"] is None and "0.0.0.0/0" in step(result, "route")[
        "detail"]
    assert net["nat_public_ip"] in step(result, "source_nat")["detail"]
    assert result["translated"] == {"source_ip": net["nat_public_ip"], "source_port": 40000,
                                    "destination_ip": "9.9.9.9", "destination_port": 443}


def test_outbound_to_a_vpn_subnet_is_routed_without_nat(lab, plant):
    net, a = plant["net"], plant["ips"]["a"]
    result = trace(lab.admin, net, "OUTBOUND", a, "172.27.0.99")
    assert result["verdict"] == "ALLOW"
    assert stages(result) == [("source", "ALLOW"), ("outbound_firewall", "ALLOW"),
                              ("route", "ALLOW")]
    route = step(result, "route")
    assert route["rule_id"] == plant["vpn_route"] and plant["tunnel"]["id"] in route["detail"]
    assert result["translated"]["source_ip"] == a


def test_outbound_firewall_deny_names_its_rule(lab, plant):
    result = trace(lab.admin, plant["net"], "OUTBOUND", plant["ips"]["c"], "9.9.9.9", 25)
    assert (result["verdict"], result["reason"]) == ("DROP", "firewall_outbound")
    assert stages(result) == [("source", "ALLOW"), ("outbound_firewall", "DROP")]
    assert step(result, "outbound_firewall")["rule_id"] == plant["rules"]["out_smtp"]
    assert plant["strict"] in step(result, "outbound_firewall")["detail"]
    # Another port passes the same chain by its default action.
    assert trace(lab.admin, plant["net"], "OUTBOUND", plant["ips"]["c"], "9.9.9.9",
                 587)["verdict"] == "ALLOW"


def test_outbound_from_an_address_that_is_no_thing_is_dropped(lab, plant):
    result = trace(lab.admin, plant["net"], "OUTBOUND", "10.255.255.1", "9.9.9.9")
    assert (result["verdict"], result["reason"]) == ("DROP", "unknown_source")
    assert stages(result) == [("source", "DROP")]


def test_inbound_through_nat_reaches_the_private_port(lab, plant):
    net = plant["net"]
    result = trace(lab.admin, net, "INBOUND", INTERNET_HOST, net["nat_public_ip"], 8443)
    assert result["verdict"] == "ALLOW"
    assert stages(result) == [("nat", "ALLOW"), ("inbound_firewall", "ALLOW")]
    assert step(result, "nat")["rule_id"] == plant["nat"]["a"]
    assert result["translated"] == {"source_ip": INTERNET_HOST, "source_port": 40000,
                                    "destination_ip": plant["ips"]["a"], "destination_port": 443}


def test_inbound_through_nat_then_the_inbound_chain_of_the_thing(lab, plant):
    net = plant["net"]
    result = trace(lab.admin, net, "INBOUND", INTERNET_HOST, net["nat_public_ip"], 2222)
    assert (result["verdict"], result["reason"]) == ("DROP", "firewall_inbound")
    assert stages(result) == [("nat", "ALLOW"), ("inbound_firewall", "DROP")]
    assert step(result, "nat")["rule_id"] == plant["nat"]["c"]
    # The chain sees the Thing's private port (22), not the public one (2222).
    assert step(result, "inbound_firewall")["rule_id"] == plant["rules"]["in_ssh"]


def test_inbound_without_a_nat_rule_is_dropped(lab, plant):
    net = plant["net"]
    for protocol, port in (("TCP", 9999), ("UDP", 8443), ("ICMP", None)):
        result = trace(lab.admin, net, "INBOUND", INTERNET_HOST, net["nat_public_ip"], port,
                       protocol)
        assert (result["verdict"], result["reason"]) == ("DROP", "no_nat_rule"), protocol
        assert stages(result) == [("nat", "DROP")]
        assert step(result, "nat")["rule_id"] is None


def test_inbound_from_the_internet_to_a_private_address_is_dropped(lab, plant):
    result = trace(lab.admin, plant["net"], "INBOUND", INTERNET_HOST, plant["ips"]["a"], 443)
    assert (result["verdict"], result["reason"]) == ("DROP", "not_nat_address")


def test_inbound_from_a_vpn_remote_subnet(lab, plant):
    net, a, c = plant["net"], plant["ips"]["a"], plant["ips"]["c"]
    result = trace(lab.admin, net, "INBOUND", "172.27.0.10", a, 22)
    assert result["verdict"] == "ALLOW"
    assert stages(result) == [("source", "ALLOW"), ("destination", "ALLOW"),
                              ("inbound_firewall", "ALLOW")]
    assert plant["tunnel"]["id"] in step(result, "source")["detail"]
    assert result["translated"]["destination_ip"] == a

    allowed = trace(lab.admin, net, "INBOUND", "172.27.0.10", c, 22)
    assert allowed["verdict"] == "ALLOW"
    assert step(allowed, "inbound_firewall")["rule_id"] == plant["rules"]["in_vpn_ssh"]
    denied = trace(lab.admin, net, "INBOUND", "172.27.0.200", c, 22)
    assert (denied["verdict"], denied["reason"]) == ("DROP", "firewall_inbound")
    assert step(denied, "inbound_firewall")["rule_id"] == plant["rules"]["in_ssh"]

    nobody = trace(lab.admin, net, "INBOUND", "172.27.0.10", "10.255.255.1", 22)
    assert (nobody["verdict"], nobody["reason"]) == ("DROP", "unknown_destination")


def test_device_to_device_without_isolation(lab, plant):
    net, a, b, c = (plant["net"], plant["ips"]["a"], plant["ips"]["b"], plant["ips"]["c"])
    result = trace(lab.admin, net, "DEVICE_TO_DEVICE", a, b, 22)
    assert result["verdict"] == "ALLOW"
    assert stages(result) == [("source", "ALLOW"), ("destination", "ALLOW"),
                              ("device_isolation", "ALLOW"), ("outbound_firewall", "ALLOW"),
                              ("inbound_firewall", "ALLOW")]
    assert result["translated"]["source_ip"] == a and result["translated"]["destination_ip"] == b

    # The receiver's inbound chain, then the sender's outbound chain, decide.
    into_c = trace(lab.admin, net, "DEVICE_TO_DEVICE", a, c, 22)
    assert (into_c["verdict"], into_c["reason"]) == ("DROP", "firewall_inbound")
    assert step(into_c, "inbound_firewall")["rule_id"] == plant["rules"]["in_ssh"]
    from_c = trace(lab.admin, net, "DEVICE_TO_DEVICE", c, a, 25)
    assert (from_c["verdict"], from_c["reason"]) == ("DROP", "firewall_outbound")
    assert step(from_c, "outbound_firewall")["rule_id"] == plant["rules"]["out_smtp"]
    assert "inbound_firewall" not in dict(stages(from_c))

    # OUTBOUND to another Thing's address is the same device-to-device path.
    outbound = trace(lab.admin, net, "OUTBOUND", a, c, 22)
    assert (outbound["verdict"], outbound["reason"]) == ("DROP", "firewall_inbound")

    unknown = trace(lab.admin, net, "DEVICE_TO_DEVICE", a, "10.255.255.1", 22)
    assert (unknown["verdict"], unknown["reason"]) == ("DROP", "unknown_destination")


def test_device_to_device_with_isolation(lab):
    net, _ = network_with_pool(lab.admin, 29, device_isolation=True)
    a, b = things_on(lab, net["id"], 2)
    ip_a, ip_b = locked(lab.admin, a["id"]), locked(lab.admin, b["id"])
    result = trace(lab.admin, net, "DEVICE_TO_DEVICE", ip_a, ip_b, protocol="ICMP")
    assert (result["verdict"], result["reason"]) == ("DROP", "device_isolation")
    assert stages(result) == [("source", "ALLOW"), ("destination", "ALLOW"),
                              ("device_isolation", "DROP")]
    # Routed destinations stay reachable.
    assert trace(lab.admin, net, "OUTBOUND", ip_a, "9.9.9.9")["verdict"] == "ALLOW"

    off = lab.admin.patch(f"/v1/networks/{net['id']}", json={"device_isolation": False})
    assert off.status_code == 200, off.text
    assert trace(lab.admin, net, "DEVICE_TO_DEVICE", ip_a, ip_b,
                 protocol="ICMP")["verdict"] == "ALLOW"


def test_things_of_another_network_are_not_sources(lab, plant):
    elsewhere, _ = network_with_pool(lab.admin, 29)
    thing = things_on(lab, elsewhere["id"])[0]
    ip = locked(lab.admin, thing["id"])
    result = trace(lab.admin, plant["net"], "OUTBOUND", ip, "9.9.9.9")
    assert (result["verdict"], result["reason"]) == ("DROP", "unknown_source")
    result = trace(lab.admin, plant["net"], "DEVICE_TO_DEVICE", plant["ips"]["a"], ip, 22)
    assert (result["verdict"], result["reason"]) == ("DROP", "unknown_destination")


def test_a_default_deny_chain_drops_without_a_rule(lab):
    net, _ = network_with_pool(lab.admin, 29)
    closed = created(lab.admin.post("/v1/ip-profiles", json={
        "name": "closed", "inbound": {"default_action": "DENY"}}))
    thing = things_on(lab, net["id"], group=make_group(lab.admin, net["id"],
                                                       ip_profile_id=closed["id"]))[0]
    ip = locked(lab.admin, thing["id"])
    result = trace(lab.admin, net, "INBOUND", "172.27.0.10", ip, 22)
    assert result["reason"] == "not_nat_address"  # no tunnel yet: an internet source
    created(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json={
        "name": "hq", "remote_gateway": "8.8.4.4", "remote_subnets": [VPN_SUBNET],
        "psk": "0123456789abcdef"}))
    result = trace(lab.admin, net, "INBOUND", "172.27.0.10", ip, 22)
    assert (result["verdict"], result["reason"]) == ("DROP", "firewall_inbound")
    assert step(result, "inbound_firewall")["rule_id"] is None
    assert "default action DENY" in step(result, "inbound_firewall")["detail"]


@pytest.mark.parametrize("body,field", [
    ({"source_ip": "10.0.0.300"}, "source_ip"),
    ({"destination_ip": "example.com"}, "destination_ip"),
    ({"destination_port": None}, "destination_port"),
    ({"direction": "SIDEWAYS"}, "direction"),
    ({"protocol": "GRE"}, "protocol"),
    ({"ttl": 3}, "ttl"),
])
def test_invalid_trace_requests_are_400(lab, plant, body, field):
    request = {"direction": "OUTBOUND", "protocol": "TCP", "source_ip": plant["ips"]["a"],
               "source_port": 40000, "destination_ip": "9.9.9.9", "destination_port": 443,
               **body}
    request = {k: v for k, v in request.items() if v is not None}
    response = lab.admin.post(f"/v1/networks/{plant['net']['id']}/trace", json=request)
    assert any(field in f for f in fields(problem(response, 400))), response.text
