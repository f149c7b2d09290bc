"""The packet trace: the policy the data plane applies, step by step, for one packet."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.errors import FieldError, validation_error
from ..models import IpLease, Network, Thing, ThingsGroup, VpnTunnel
from . import nat, routing
from .schemas import TraceOut, TraceRequest, TraceStep


@dataclass
class _Thing:
    id: str
    ip_address: str
    ip_profile_id: str


def _validate(body: TraceRequest) -> None:
    errors = []
    for field in ("source_ip", "destination_ip"):
        value = getattr(body, field)
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            errors.append(FieldError(field, f"{value!r} is not an IPv4 address"))
    if body.protocol in ("TCP", "UDP"):
        for field in ("source_port", "destination_port"):
            if getattr(body, field) is None:
                errors.append(FieldError(field, f"is required for {body.protocol}"))
    if errors:
        raise validation_error("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


def _thing_at(session: Session, network: Network, address: str) -> _Thing | None:
    row = session.execute(
        select(Thing.id, Thing.ip_address, ThingsGroup.ip_profile_id)
        .join(ThingsGroup, ThingsGroup.id == Thing.things_group_id)
        # By its lease: things has no index on ip_address (see things.repository._showing).
        .join(IpLease, IpLease.thing_id == Thing.id)
        .where(IpLease.network_id == network.id,
               IpLease.address == int(ipaddress.IPv4Address(address)),
               Thing.account_id == network.account_id, Thing.ip_address == address,
               ThingsGroup.network_id == network.id, Thing.state != "RETIRED")
        .limit(1)).first()
    return _Thing(row.id, row.ip_address, row.ip_profile_id) if row else None


class _Trace:
    def __init__(self, session: Session, network: Network, body: TraceRequest) -> None:
        self.session = session
        self.network = network
        self.body = body
        self.steps: list[TraceStep] = []
        self.translated: dict[str, str | int | None] = {}

    def step(self, stage: str, result: str, detail: str, rule_id: str | None = None) -> None:
        self.steps.append(TraceStep(stage=stage, result=result, detail=detail, rule_id=rule_id))

    def drop(self, reason: str) -> TraceOut:
        return TraceOut(verdict="DROP", reason=reason, steps=self.steps,
                        translated=self.translated)

    def allow(self) -> TraceOut:
        return TraceOut(verdict="ALLOW", reason="allowed", steps=self.steps,
                        translated=self.translated)

    def chain(self, thing: _Thing, direction: str, remote_ip: str, port: int | None) -> bool:
        from ..firewall.service import evaluate_chain

        action, rule_id, detail = evaluate_chain(
            self.session, self.network.account_id, thing.ip_profile_id, direction,
            self.body.protocol, remote_ip, port)
        stage = f"{direction.lower()}_firewall"
        self.step(stage, "ALLOW" if action == "ALLOW" else "DROP",
                  f"IP Profile {thing.ip_profile_id} of Thing {thing.id}: {detail}", rule_id)
        return action == "ALLOW"

    def port(self, value: int | None) -> int | None:
        return value if self.body.protocol in ("TCP", "UDP") else None


def trace(session: Session, network: Network, body: TraceRequest) -> TraceOut:
    _validate(body)
    run = _Trace(session, network, body)
    if body.direction == "OUTBOUND":
        return _outbound(run)
    if body.direction == "INBOUND":
        return _inbound(run)
    return _device_to_device(run)


def _outbound(run: _Trace) -> TraceOut:
    body, network = run.body, run.network
    sender = _thing_at(run.session, network, body.source_ip)
    if sender is None:
        run.step("source", "DROP", f"{body.source_ip} is no Thing's address on Network "
                 f"{network.id}")
        return run.drop("unknown_source")
    run.step("source", "ALLOW", f"{body.source_ip} is Thing {sender.id}")
    receiver = _thing_at(run.session, network, body.destination_ip)
    if receiver is not None:
        run.step("route", "ALLOW", f"{body.destination_ip} is Thing {receiver.id} on the same "
                 "Network: device-to-device traffic")
        return _between(run, sender, receiver)
    if not run.chain(sender, "OUTBOUND", body.destination_ip, run.port(body.destination_port)):
        return run.drop("firewall_outbound")
    route = routing.resolve(run.session, network.id, body.destination_ip)
    if route.target == "VPN_TUNNEL":
        tunnel = run.session.get(VpnTunnel, route.vpn_tunnel_id)
        status = tunnel.status if tunnel else "DOWN"
        run.step("route", "ALLOW", f"{route.destination} -> VPN tunnel {route.vpn_tunnel_id} "
                 f"(status {status})", route.route_id)
        run.translated = {"source_ip": body.source_ip, "source_port": body.source_port,
                          "destination_ip": body.destination_ip,
                          "destination_port": body.destination_port}
        return run.allow()
    run.step("route", "ALLOW", f"{route.destination} -> INTERNET"
             + ("" if route.route_id else " (implicit default route)"), route.route_id)
    run.step("source_nat", "ALLOW", f"source {body.source_ip} translated to "
             f"{network.nat_public_ip}")
    run.translated = {"source_ip": network.nat_public_ip, "source_port": body.source_port,
                      "destination_ip": body.destination_ip,
                      "destination_port": body.destination_port}
    return run.allow()


def _from_vpn(run: _Trace) -> VpnTunnel | None:
    source = ipaddress.IPv4Address(run.body.source_ip)
    for tunnel in run.session.scalars(select(VpnTunnel).where(
            VpnTunnel.network_id == run.network.id)):
        if any(source in ipaddress.IPv4Network(s) for s in tunnel.remote_subnets):
            return tunnel
    return None


def _inbound(run: _Trace) -> TraceOut:
    body, network = run.body, run.network
    tunnel = _from_vpn(run)
    if tunnel is not None:
        run.step("source", "ALLOW", f"{body.source_ip} is in a remote subnet of VPN tunnel "
                 f"{tunnel.id}")
        receiver = _thing_at(run.session, network, body.destination_ip)
        if receiver is None:
            run.step("destination", "DROP", f"{body.destination_ip} is no Thing's address on "
                     f"Network {network.id}")
            return run.drop("unknown_destination")
        run.step("destination", "ALLOW", f"{body.destination_ip} is Thing {receiver.id}")
        if not run.chain(receiver, "INBOUND", body.source_ip, run.port(body.destination_port)):
            return run.drop("firewall_inbound")
        run.translated = {"source_ip": body.source_ip, "source_port": body.source_port,
                          "destination_ip": body.destination_ip,
                          "destination_port": body.destination_port}
        return run.allow()
    if body.destination_ip != network.nat_public_ip:
        run.step("destination", "DROP", f"{body.destination_ip} is not the Network's NAT "
                 f"address {network.nat_public_ip}; Things are reachable from the internet only "
                 "through NAT port forwarding")
        return run.drop("not_nat_address")
    rule = (nat.forward(run.session, network, body.protocol, body.destination_port)
            if body.protocol in ("TCP", "UDP") and body.destination_port else None)
    if rule is None:
        run.step("nat", "DROP", f"no NAT rule forwards {body.protocol} "
                 f"{network.nat_public_ip}:{body.destination_port}")
        return run.drop("no_nat_rule")
    thing = run.session.get(Thing, rule.thing_id)
    receiver = _thing_at(run.session, network, thing.ip_address) if thing and thing.ip_address else None
    if receiver is None:
        run.step("nat", "DROP", f"NAT rule {rule.id} targets Thing {rule.thing_id}, which holds "
                 "no address on this Network", rule.id)
        return run.drop("unknown_destination")
    run.step("nat", "ALLOW", f"{network.nat_public_ip}:{rule.public_port} -> "
             f"{receiver.ip_address}:{rule.private_port} (Thing {receiver.id})", rule.id)
    run.translated = {"source_ip": body.source_ip, "source_port": body.source_port,
                      "destination_ip": receiver.ip_address, "destination_port": rule.private_port}
    if not run.chain(receiver, "INBOUND", body.source_ip, rule.private_port):
        return run.drop("firewall_inbound")
    return run.allow()


def _device_to_device(run: _Trace) -> TraceOut:
    body, network = run.body, run.network
    sender = _thing_at(run.session, network, body.source_ip)
    if sender is None:
        run.step("source", "DROP", f"{body.source_ip} is no Thing's address on Network "
                 f"{network.id}")
        return run.drop("unknown_source")
    run.step("source", "ALLOW", f"{body.source_ip} is Thing {sender.id}")
    receiver = _thing_at(run.session, network, body.destination_ip)
    if receiver is None:
        run.step("destination", "DROP", f"{body.destination_ip} is no Thing's address on "
                 f"Network {network.id}")
        return run.drop("unknown_destination")
    run.step("destination", "ALLOW", f"{body.destination_ip} is Thing {receiver.id}")
    return _between(run, sender, receiver)


def _between(run: _Trace, sender: _Thing, receiver: _Thing) -> TraceOut:
    body, network = run.body, run.network
    if network.device_isolation:
        run.step("device_isolation", "DROP", f"Network {network.id} isolates its Things from "
                 "each other")
        return run.drop("device_isolation")
    run.step("device_isolation", "ALLOW", "device isolation is off")
    port = run.port(body.destination_port)
    if not run.chain(sender, "OUTBOUND", receiver.ip_address, port):
        return run.drop("firewall_outbound")
    if not run.chain(receiver, "INBOUND", sender.ip_address, port):
        return run.drop("firewall_inbound")
    run.translated = {"source_ip": body.source_ip, "source_port": body.source_port,
                      "destination_ip": body.destination_ip,
                      "destination_port": body.destination_port}
    return run.allow()
