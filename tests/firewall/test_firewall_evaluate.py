"""POST /v1/ip-profiles/{id}/evaluate and evaluate_chain (api.md §7, network.md §3)."""

from __future__ import annotations

import pytest
from fwkit import add_rule, assert_bad_request, make_profile

from simplane.core.errors import AppError
from simplane.firewall.service import evaluate_chain


def verdict(client, profile_id: str, direction: str, protocol: str, remote_ip: str,
            port: int | None = None) -> dict:
    body = {"direction": direction, "protocol": protocol, "remote_ip": remote_ip}
    if port is not None:
        body["port"] = port
    response = client.post(f"/v1/ip-profiles/{profile_id}/evaluate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_empty_profile_allows_everything(account) -> None:
    default = account.admin.get("/v1/ip-profiles").json()["items"][0]
    for direction in ("INBOUND", "OUTBOUND"):
        assert verdict(account.admin, default["id"], direction, "TCP", "203.0.113.9", 22) == {
            "action": "ALLOW", "rule_id": None}


def test_default_action_applies_when_nothing_matches(account) -> None:
    pid = make_profile(account.admin, inbound={"default_action": "DENY"})["id"]
    allow_https = add_rule(account.admin, pid, action="ALLOW", protocol="TCP", ports="443")
    assert verdict(account.admin, pid, "INBOUND", "TCP", "203.0.113.9", 443) == {
        "action": "ALLOW", "rule_id": allow_https["id"]}
    assert verdict(account.admin, pid, "INBOUND", "TCP", "203.0.113.9", 444) == {
        "action": "DENY", "rule_id": None}
    assert verdict(account.admin, pid, "INBOUND", "UDP", "203.0.113.9", 443) == {
        "action": "DENY", "rule_id": None}
    # The outbound chain keeps its own default.
    assert verdict(account.admin, pid, "OUTBOUND", "TCP", "203.0.113.9", 444) == {
        "action": "ALLOW", "rule_id": None}


def test_first_match_by_position_decides(account) -> None:
    pid = make_profile(account.admin)["id"]
    deny_net = add_rule(account.admin, pid, chain="OUTBOUND", action="DENY",
                        remote_cidr="10.0.0.0/8")
    allow_host = add_rule(account.admin, pid, chain="OUTBOUND", action="ALLOW",
                          remote_cidr="10.1.2.3/32")
    # Appended after the broader DENY, the host rule never wins...
    assert verdict(account.admin, pid, "OUTBOUND", "ICMP", "10.1.2.3")["rule_id"] == deny_net["id"]
    # ...until it moves ahead of it.
    account.admin.patch(f"/v1/ip-profiles/{pid}/rules/{allow_host['id']}", json={"position": 1})
    assert verdict(account.admin, pid, "OUTBOUND", "ICMP", "10.1.2.3") == {
        "action": "ALLOW", "rule_id": allow_host["id"]}
    assert verdict(account.admin, pid, "OUTBOUND", "ICMP", "10.1.2.4") == {
        "action": "DENY", "rule_id": deny_net["id"]}
    assert verdict(account.admin, pid, "OUTBOUND", "ICMP", "11.0.0.1") == {
        "action": "ALLOW", "rule_id": None}
    # Chains are separate: an OUTBOUND rule says nothing about INBOUND.
    assert verdict(account.admin, pid, "INBOUND", "ICMP", "10.1.2.4")["rule_id"] is None


def test_protocols_and_ports(account) -> None:
    pid = make_profile(account.admin)["id"]
    ssh = add_rule(account.admin, pid, action="DENY", protocol="TCP", ports="22")
    dev = add_rule(account.admin, pid, action="DENY", protocol="UDP", ports="5000-5010")
    ping = add_rule(account.admin, pid, action="DENY", protocol="ICMP",
                    remote_cidr="192.0.2.0/24")
    rest = add_rule(account.admin, pid, action="ALLOW", protocol="ANY",
                    remote_cidr="198.51.100.0/24")
    cases = [
        ("TCP", "203.0.113.1", 22, ssh["id"]),
        ("UDP", "203.0.113.1", 22, None),         # the port rule is TCP only
        ("UDP", "203.0.113.1", 5000, dev["id"]),  # range bounds are inclusive
        ("UDP", "203.0.113.1", 5010, dev["id"]),
        ("UDP", "203.0.113.1", 5011, None),
        ("ICMP", "192.0.2.200", None, ping["id"]),
        ("ICMP", "192.0.3.1", None, None),
        ("ICMP", "198.51.100.7", None, rest["id"]),  # ANY covers ICMP
        ("TCP", "198.51.100.7", 8080, rest["id"]),   # and TCP on any port
    ]
    for protocol, ip, port, expected in cases:
        assert verdict(account.admin, pid, "INBOUND", protocol, ip, port)["rule_id"] == expected, (
            protocol, ip, port)


@pytest.mark.parametrize("body, field, mention", [
    ({"protocol": "TCP"}, "port", "TCP"),
    ({"protocol": "ICMP", "port": 7}, "port", "ICMP"),
    ({"protocol": "ANY", "port": 7}, "protocol", "ANY"),
    ({"protocol": "TCP", "port": 0}, "port", "0"),
    ({"protocol": "TCP", "port": 65536}, "port", "65536"),
    ({"protocol": "TCP", "port": 1, "remote_ip": "300.1.1.1"}, "remote_ip", "300.1.1.1"),
    ({"protocol": "TCP", "port": 1, "remote_ip": "10.0.0.0/8"}, "remote_ip", "10.0.0.0/8"),
    ({"protocol": "TCP", "port": 1, "direction": "DEVICE_TO_DEVICE"}, "direction",
     "DEVICE_TO_DEVICE"),
    ({"protocol": "TCP", "port": 1, "source_ip": "10.0.0.1"}, "source_ip", "unknown field"),
])
def test_evaluate_validation(account, body, field, mention) -> None:
    pid = make_profile(account.admin)["id"]
    payload = {"direction": "INBOUND", "remote_ip": "192.0.2.1"} | body
    assert_bad_request(account.admin.post(f"/v1/ip-profiles/{pid}/evaluate", json=payload),
                       field, mention)


def test_evaluate_chain_for_the_packet_trace(account, outsider) -> None:
    pid = make_profile(account.admin, outbound={"default_action": "DENY"})["id"]
    rule = add_rule(account.admin, pid, chain="OUTBOUND", action="ALLOW", protocol="UDP",
                    ports="53", remote_cidr="192.0.2.53/32")
    with account.backend.database.transaction(read_only=True) as session:
        action, rule_id, detail = evaluate_chain(session, account.account_id, pid, "OUTBOUND",
                                                 "UDP", "192.0.2.53", 53)
        assert (action, rule_id) == ("ALLOW", rule["id"])
        assert rule["id"] in detail and "position 1" in detail

        action, rule_id, detail = evaluate_chain(session, account.account_id, pid, "OUTBOUND",
                                                 "TCP", "192.0.2.53", 53)
        assert (action, rule_id) == ("DENY", None)
        assert "default action DENY" in detail

        # A port given with ICMP (a trace carries both port fields) is ignored, not an error.
        assert evaluate_chain(session, account.account_id, pid, "INBOUND", "ICMP", "192.0.2.53",
                              53)[:2] == ("ALLOW", None)

        with pytest.raises(AppError) as refused:
            evaluate_chain(session, outsider.account_id, pid, "OUTBOUND", "UDP",
                           "192.0.2.53", 53)
        assert refused.value.status == 404
