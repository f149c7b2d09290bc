"""Routes of a Network: longest prefix wins; 0.0.0.0/0 -> INTERNET is implicit."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.errors import bad_field, not_found, precondition, unknown_reference
from ..core.ids import new_id
from ..models import Network, Route, VpnTunnel
from .schemas import RouteCreate


def parse_destination(destination: str, field: str = "destination") -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(destination, strict=True)
    except ValueError as exc:
        raise bad_field(field, f"{destination!r} is not an IPv4 network in CIDR form "
                        f"({exc})") from None


def add_route(session: Session, network: Network, destination: str, target: str,
              vpn_tunnel_id: str | None) -> Route:
    parsed = parse_destination(destination)
    existing = session.scalar(select(Route).where(Route.network_id == network.id,
                                                  Route.destination == str(parsed)))
    if existing is not None:
        raise precondition("conflict", f"Network {network.id} already has a route to {parsed} "
                           f"({existing.id})")
    route = Route(id=new_id("route"), account_id=network.account_id, network_id=network.id,
                  destination=str(parsed), prefix_length=parsed.prefixlen, target=target,
                  vpn_tunnel_id=vpn_tunnel_id)
    session.add(route)
    session.flush()
    return route


def create_route(session: Session, network: Network, body: RouteCreate) -> Route:
    if body.target == "VPN_TUNNEL":
        if body.vpn_tunnel_id is None:
            raise bad_field("vpn_tunnel_id", "is required when target is VPN_TUNNEL")
        tunnel = session.scalar(select(VpnTunnel.id).where(
            VpnTunnel.account_id == network.account_id, VpnTunnel.network_id == network.id,
            VpnTunnel.id == body.vpn_tunnel_id))
        if tunnel is None:
            raise unknown_reference("vpn_tunnel_id", body.vpn_tunnel_id)
    elif body.vpn_tunnel_id is not None:
        raise bad_field("vpn_tunnel_id", "must be omitted when target is INTERNET")
    return add_route(session, network, body.destination, body.target, body.vpn_tunnel_id)


def require_route(session: Session, network: Network, route_id: str) -> Route:
    route = session.scalar(select(Route).where(Route.account_id == network.account_id,
                                               Route.network_id == network.id,
                                               Route.id == route_id))
    if route is None:
        raise not_found("route", route_id)
    return route


@dataclass(frozen=True)
class RouteDecision:
    destination: str
    target: str
    vpn_tunnel_id: str | None
    route_id: str | None


def resolve(session: Session, network_id: str, address: str) -> RouteDecision:
    """The most specific route to `address`; the implicit default route when none matches."""
    ip = ipaddress.IPv4Address(address)
    best: Route | None = None
    for route in session.scalars(select(Route).where(Route.network_id == network_id)):
        if ip in ipaddress.IPv4Network(route.destination) and (
                best is None or route.prefix_length > best.prefix_length):
            best = route
    if best is None:
        return RouteDecision("0.0.0.0/0", "INTERNET", None, None)
    return RouteDecision(best.destination, best.target, best.vpn_tunnel_id, best.id)
