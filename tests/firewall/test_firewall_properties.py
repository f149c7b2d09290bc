"""First-match evaluation agrees with a brute-force reference (issue 3, "Must show").

The reference below is written from the spec's words, not from simplane.firewall.evaluate:
it checks every rule against the packet with the ipaddress module's own membership test and
keeps the matching rule with the lowest position.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fwkit import make_profile
from hypothesis import given, settings
from hypothesis import strategies as st

from simplane.firewall.evaluate import Packet, Rule, evaluate

# A small address and port space, so that random rules and packets actually meet.
ADDRESSES = ["10.0.0.0", "10.0.0.1", "10.0.0.7", "10.0.1.1", "10.1.0.1", "192.0.2.1",
             "192.0.2.255", "0.0.0.0", "255.255.255.255"]
PREFIXES = [0, 1, 8, 16, 24, 29, 31, 32]
PORTS = [1, 2, 3, 22, 80, 443, 1024, 65534, 65535]


@dataclass(frozen=True)
class RefRule:
    chain: str
    action: str
    protocol: str
    cidr: str
    ports: tuple[int, int] | None


def reference(rules_in_order: list[RefRule], default_action: str, direction: str,
              protocol: str, remote_ip: str, port: int | None) -> tuple[str, int | None]:
    """(action, index into rules_in_order of the deciding rule, or None)."""
    for index, rule in enumerate(rules_in_order):
        if rule.chain != direction:
            continue
        if rule.protocol not in ("ANY", protocol):
            continue
        if ipaddress.ip_address(remote_ip) not in ipaddress.ip_network(rule.cidr):
            continue
        if rule.ports is not None:
            if protocol not in ("TCP", "UDP") or port is None:
                continue
            if port not in range(rule.ports[0], rule.ports[1] + 1):
                continue
        return rule.action, index
    return default_action, None


@st.composite
def ref_rules(draw, loose: bool = False) -> RefRule:  # type: ignore[no-untyped-def]
    """A rule as the API accepts it; `loose` also gives ports to ANY rules, which the API
    refuses but the engine must still treat as "TCP/UDP packets in range only"."""
    protocol = draw(st.sampled_from(["ANY", "TCP", "UDP", "ICMP"]))
    network = ipaddress.ip_network(
        f"{draw(st.sampled_from(ADDRESSES))}/{draw(st.sampled_from(PREFIXES))}", strict=False)
    ports = None
    if protocol in (("ANY", "TCP", "UDP") if loose else ("TCP", "UDP")) and draw(st.booleans()):
        low, high = sorted(draw(st.lists(st.sampled_from(PORTS), min_size=2, max_size=2)))
        ports = (low, high)
    return RefRule(draw(st.sampled_from(["INBOUND", "OUTBOUND"])),
                   draw(st.sampled_from(["ALLOW", "DENY"])), protocol, str(network), ports)


@st.composite
def packets(draw, loose: bool = False):  # type: ignore[no-untyped-def]
    """A packet as the API takes it; `loose` also draws what only internal callers may pass
    (ICMP with a port, TCP/UDP without one), which port rules must never match."""
    protocol = draw(st.sampled_from(["TCP", "UDP", "ICMP"]))
    if loose:
        port = draw(st.none() | st.sampled_from(PORTS))
    else:
        port = draw(st.sampled_from(PORTS)) if protocol != "ICMP" else None
    return (draw(st.sampled_from(["INBOUND", "OUTBOUND"])), protocol,
            draw(st.sampled_from(ADDRESSES)), port)


@settings(max_examples=300, deadline=None)
@given(rules=st.lists(ref_rules(loose=True), max_size=12), packet=packets(loose=True),
       defaults=st.tuples(st.sampled_from(["ALLOW", "DENY"]), st.sampled_from(["ALLOW", "DENY"])),
       order=st.randoms(use_true_random=False))
def test_engine_agrees_with_reference(rules, packet, defaults, order) -> None:
    direction, protocol, remote_ip, port = packet
    default = defaults[0] if direction == "INBOUND" else defaults[1]
    chain = [(i, r) for i, r in enumerate(rules) if r.chain == direction]
    engine_rules = [
        Rule(id=f"r{i}", position=position, action=r.action, protocol=r.protocol,
             remote_cidr=r.cidr, port_from=r.ports[0] if r.ports else None,
             port_to=r.ports[1] if r.ports else None)
        for position, (i, r) in enumerate(chain, start=1)]
    # Position, not list order, decides: hand the engine its rules shuffled.
    order.shuffle(engine_rules)
    result = evaluate(engine_rules, default, Packet(protocol, remote_ip, port))
    expected_action, expected_index = reference(rules, default, direction, protocol,
                                                 remote_ip, port)
    assert result.action == expected_action
    assert result.rule_id == (f"r{expected_index}" if expected_index is not None else None)


@st.composite
def api_rule_sets(draw):  # type: ignore[no-untyped-def]
    """Rules with an insertion position each (None: append), as a client would send them."""
    steps, sizes = [], {"INBOUND": 0, "OUTBOUND": 0}
    for rule in draw(st.lists(ref_rules(), max_size=6)):
        sizes[rule.chain] += 1
        position = draw(st.none() | st.integers(1, sizes[rule.chain]))
        steps.append((rule, position))
    return steps


@settings(max_examples=20, deadline=None)
@given(steps=api_rule_sets(), probes=st.lists(packets(), min_size=1, max_size=4),
       defaults=st.tuples(st.sampled_from(["ALLOW", "DENY"]), st.sampled_from(["ALLOW", "DENY"])))
def test_http_evaluate_agrees_with_reference(account, steps, probes, defaults) -> None:
    profile = make_profile(account.admin, inbound={"default_action": defaults[0]},
                           outbound={"default_action": defaults[1]})
    url = f"/v1/ip-profiles/{profile['id']}"
    # The expected order is kept independently of the server: a list per chain.
    model: dict[str, list[tuple[RefRule, str]]] = {"INBOUND": [], "OUTBOUND": []}
    for rule, position in steps:
        body = {"chain": rule.chain, "action": rule.action, "protocol": rule.protocol,
                "remote_cidr": rule.cidr}
        if rule.ports:
            body["ports"] = f"{rule.ports[0]}-{rule.ports[1]}"
        if position is not None:
            body["position"] = position
        response = account.admin.post(f"{url}/rules", json=body)
        assert response.status_code == 201, response.text
        chain = model[rule.chain]
        chain.insert(len(chain) if position is None else position - 1,
                     (rule, response.json()["id"]))

    listed = account.admin.get(f"{url}/rules", params={"limit": 1000}).json()["items"]
    assert [r["id"] for r in listed] == [i for _, i in model["INBOUND"] + model["OUTBOUND"]]
    for direction, protocol, remote_ip, port in probes:
        ordered = model[direction]
        default = defaults[0] if direction == "INBOUND" else defaults[1]
        action, index = reference([r for r, _ in ordered], default, direction, protocol,
                                  remote_ip, port)
        body = {"direction": direction, "protocol": protocol, "remote_ip": remote_ip}
        if port is not None:
            body["port"] = port
        response = account.admin.post(f"{url}/evaluate", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"action": action,
                                   "rule_id": ordered[index][1] if index is not None else None}
