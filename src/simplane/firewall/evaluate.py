"""The first-match firewall engine and the rule field syntax. Pure: no database, no HTTP.

A chain is a list of rules; the rule with the lowest `position` that matches a packet decides,
and a packet no rule matches gets the chain's default action. The remote side of a packet is
its source on INBOUND and its destination on OUTBOUND; its port is the Thing's port on INBOUND
and the remote port on OUTBOUND. Callers pick those out; this module only compares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError

ACTIONS = ("ALLOW", "DENY")
CHAINS = ("INBOUND", "OUTBOUND")
RULE_PROTOCOLS = ("ANY", "TCP", "UDP", "ICMP")
PACKET_PROTOCOLS = ("TCP", "UDP", "ICMP")
PORTED_PROTOCOLS = frozenset({"TCP", "UDP"})
MAX_PORT = 65535

_CIDR = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}$")
_PORTS = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    position: int
    action: str
    protocol: str = "ANY"
    remote_cidr: str = "0.0.0.0/0"
    port_from: int | None = None
    port_to: int | None = None


@dataclass(frozen=True, slots=True)
class Packet:
    protocol: str
    remote_ip: str | IPv4Address
    port: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str
    rule: Rule | None
    detail: str

    @property
    def rule_id(self) -> str | None:
        return self.rule.id if self.rule else None


def parse_cidr(value: str) -> str:
    """The canonical text of a strict IPv4 CIDR (host bits zero); ValueError naming the value."""
    if not isinstance(value, str) or not _CIDR.match(value):
        raise ValueError(f"{value!r} is not IPv4 CIDR notation such as 10.0.0.0/8")
    try:
        return str(IPv4Network(value, strict=True))
    except (AddressValueError, NetmaskValueError) as exc:
        raise ValueError(f"{value!r} is not a valid IPv4 CIDR: {exc}") from None
    except ValueError:
        raise ValueError(f"{value!r} has host bits set; did you mean "
                         f"{IPv4Network(value, strict=False)}?") from None


def parse_ip(value: str) -> str:
    try:
        return str(IPv4Address(value))
    except (AddressValueError, ValueError):
        raise ValueError(f"{value!r} is not an IPv4 address") from None


def parse_ports(value: str) -> tuple[int, int]:
    """`"443"` -> (443, 443); `"1000-2000"` -> (1000, 2000); ValueError naming the value."""
    match = _PORTS.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a port (\"443\") or a port range (\"1000-2000\")")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if not (1 <= low <= MAX_PORT and 1 <= high <= MAX_PORT):
        raise ValueError(f"{value!r}: ports are between 1 and {MAX_PORT}")
    if low > high:
        raise ValueError(f"{value!r}: the range's low port is above its high port")
    return low, high


def format_ports(port_from: int | None, port_to: int | None) -> str | None:
    if port_from is None:
        return None
    if port_to is None or port_to == port_from:
        return str(port_from)
    return f"{port_from}-{port_to}"


@lru_cache(maxsize=4096)
def _network(cidr: str) -> tuple[int, int]:
    network = IPv4Network(cidr, strict=False)
    return int(network.network_address), int(network.netmask)


def _address(value: str | IPv4Address) -> int:
    return int(value if isinstance(value, IPv4Address) else IPv4Address(value))


def matches(rule: Rule, protocol: str, address: int, port: int | None) -> bool:
    if rule.protocol != "ANY" and rule.protocol != protocol:
        return False
    network, netmask = _network(rule.remote_cidr)
    if address & netmask != network:
        return False
    if rule.port_from is None:
        return True
    if protocol not in PORTED_PROTOCOLS or port is None:
        return False
    high = rule.port_to if rule.port_to is not None else rule.port_from
    return rule.port_from <= port <= high


def first_match(rules: Iterable[Rule], packet: Packet) -> Rule | None:
    address = _address(packet.remote_ip)
    for rule in sorted(rules, key=lambda r: r.position):
        if matches(rule, packet.protocol, address, packet.port):
            return rule
    return None


def describe(rule: Rule) -> str:
    ports = format_ports(rule.port_from, rule.port_to)
    return (f"{rule.action} {rule.protocol} {rule.remote_cidr}"
            + (f" port {ports}" if ports else ""))


def evaluate(rules: Iterable[Rule], default_action: str, packet: Packet, *,
             chain: str = "chain") -> Verdict:
    rule = first_match(rules, packet)
    if rule is None:
        return Verdict(default_action, None,
                       f"no {chain} rule matched; default action {default_action}")
    return Verdict(rule.action, rule,
                   f"{chain} rule {rule.id} at position {rule.position} ({describe(rule)}) "
                   f"matched: {rule.action}")
