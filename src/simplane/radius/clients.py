"""NAS clients and their shared secrets (`SIMPLANE_RADIUS_CLIENTS=CIDR=secret,...`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class NasClient:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    secret: bytes


def parse_clients(text: str) -> list[NasClient]:
    clients = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        cidr, sep, secret = item.partition("=")
        if not sep or not secret:
            raise ValueError(f"{item!r} is not CIDR=secret")
        clients.append(NasClient(ipaddress.ip_network(cidr.strip(), strict=False),
                                 secret.encode()))
    # Most specific first, so a /32 entry overrides a broader one.
    return sorted(clients, key=lambda c: -c.network.prefixlen)


def secret_for(clients: list[NasClient], address: str) -> bytes | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return next((c.secret for c in clients if ip in c.network), None)
