"""`simplane-cli groups|networks|ip-profiles|trace ...`"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .common import (
    AllOpt,
    CursorOpt,
    JsonlOpt,
    JsonOpt,
    LimitOpt,
    client,
    emit_list,
    output,
)

groups = typer.Typer(help="Things Groups: a Network and an IP Profile for their Things.",
                     no_args_is_help=True)
networks = typer.Typer(help="Networks: IP pools, NAT port forwarding, IPSec VPN tunnels.",
                       no_args_is_help=True)
nat = typer.Typer(help="NAT port forwarding rules of a Network.", no_args_is_help=True)
vpn = typer.Typer(help="IPSec VPN tunnels of a Network.", no_args_is_help=True)
profiles = typer.Typer(help="IP Profiles: the firewall of a Things Group.",
                       no_args_is_help=True)
rules = typer.Typer(help="Firewall rules of an IP Profile.", no_args_is_help=True)

GROUP_COLUMNS = [
    ("ID", lambda g: g.id), ("NAME", lambda g: g.name), ("NETWORK", lambda g: g.network_id),
    ("IP PROFILE", lambda g: g.ip_profile_id), ("DEFAULT", lambda g: g.is_default),
    ("THINGS", lambda g: g.thing_count),
]
NETWORK_COLUMNS = [
    ("ID", lambda n: n.id), ("NAME", lambda n: n.name), ("DEFAULT", lambda n: n.is_default),
    ("ISOLATION", lambda n: n.device_isolation), ("NAT IP", lambda n: n.nat_public_ip),
    ("VPN GATEWAY", lambda n: n.vpn_gateway_ip), ("POOLS", lambda n: [p.cidr for p in n.ip_pools]),
]
POOL_COLUMNS = [
    ("POOL", lambda p: p.id), ("CIDR", lambda p: p.cidr), ("USABLE", lambda p: p.usable),
    ("LEASED", lambda p: p.leased), ("LOCKED", lambda p: p.locked), ("FREE", lambda p: p.free),
]
NAT_COLUMNS = [
    ("ID", lambda r: r.id), ("PROTOCOL", lambda r: r.protocol),
    ("PUBLIC", lambda r: f"{r.public_ip}:{r.public_port}"), ("THING", lambda r: r.thing_id),
    ("PRIVATE PORT", lambda r: r.private_port), ("DESCRIPTION", lambda r: r.description),
]
VPN_COLUMNS = [
    ("ID", lambda t: t.id), ("NAME", lambda t: t.name), ("STATUS", lambda t: t.status),
    ("REMOTE GATEWAY", lambda t: t.remote_gateway), ("REMOTE SUBNETS", lambda t: t.remote_subnets),
    ("LOCAL SUBNETS", lambda t: t.local_subnets), ("LOCAL GATEWAY", lambda t: t.local_gateway),
]
PROFILE_COLUMNS = [
    ("ID", lambda p: p.id), ("NAME", lambda p: p.name), ("DEFAULT", lambda p: p.is_default),
    ("INBOUND", lambda p: f"{p.inbound.default_action}, {len(p.inbound.rules)} rules"),
    ("OUTBOUND", lambda p: f"{p.outbound.default_action}, {len(p.outbound.rules)} rules"),
    ("GROUPS", lambda p: p.things_group_count),
]
RULE_COLUMNS = [
    ("ID", lambda r: r.id), ("CHAIN", lambda r: r.chain), ("POS", lambda r: r.position),
    ("ACTION", lambda r: r.action), ("PROTOCOL", lambda r: r.protocol),
    ("REMOTE", lambda r: r.remote_cidr), ("PORTS", lambda r: r.ports),
    ("DESCRIPTION", lambda r: r.description),
]

NetworkId = Annotated[str, typer.Argument(help="Network id.")]


# groups ---------------------------------------------------------------------------------------

@groups.command("list")
def list_groups(ctx: typer.Context, limit: LimitOpt = None, cursor: CursorOpt = None,
                every: AllOpt = False, json_output: JsonOpt = False,
                jsonl: JsonlOpt = False) -> None:
    """Things Groups."""
    emit_list(output(json_output, jsonl), client(ctx).groups.list(limit=limit, cursor=cursor),
              GROUP_COLUMNS, every)


@groups.command("get")
def get_group(ctx: typer.Context, group_id: Annotated[str, typer.Argument(help="Group id.")],
              json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """One Things Group."""
    output(json_output, jsonl).detail(client(ctx).groups.get(group_id))


@groups.command("create")
def create_group(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Group name.")],
    description: Annotated[str | None, typer.Option("--description")] = None,
    network: Annotated[str | None, typer.Option(
        "--network", help="Network id (default: the account's default Network).")] = None,
    ip_profile: Annotated[str | None, typer.Option(
        "--ip-profile", help="IP Profile id (default: the account's default).")] = None,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Create a Things Group."""
    output(json_output, jsonl).detail(client(ctx).groups.create(
        name, description=description, network_id=network, ip_profile_id=ip_profile))


@groups.command("delete")
def delete_group(ctx: typer.Context,
                 group_id: Annotated[str, typer.Argument(help="Group id.")]) -> None:
    """Delete an empty, non-default Things Group."""
    client(ctx).groups.delete(group_id)
    output(False, False).note(f"deleted {group_id}")


# networks -------------------------------------------------------------------------------------

@networks.command("list")
def list_networks(ctx: typer.Context, limit: LimitOpt = None, cursor: CursorOpt = None,
                  every: AllOpt = False, json_output: JsonOpt = False,
                  jsonl: JsonlOpt = False) -> None:
    """Networks."""
    emit_list(output(json_output, jsonl),
              client(ctx).networks.list(limit=limit, cursor=cursor), NETWORK_COLUMNS, every)


@networks.command("get")
def get_network(ctx: typer.Context, network_id: NetworkId, json_output: JsonOpt = False,
                jsonl: JsonlOpt = False) -> None:
    """One Network with its IP pools."""
    net = client(ctx).networks.get(network_id)
    out = output(json_output, jsonl)
    if out.structured:
        out.detail(net)
        return
    out.detail(net, [("id", lambda n: n.id), ("name", lambda n: n.name),
                     ("apn", lambda n: n.apn), ("default", lambda n: n.is_default),
                     ("device isolation", lambda n: n.device_isolation),
                     ("dns servers", lambda n: n.dns_servers),
                     ("nat public ip", lambda n: n.nat_public_ip),
                     ("vpn gateway ip", lambda n: n.vpn_gateway_ip),
                     ("created", lambda n: n.created_at)])
    out.items(net.ip_pools, POOL_COLUMNS, empty="no IP pools")


@nat.command("list")
def list_nat(ctx: typer.Context, network_id: NetworkId, every: AllOpt = False,
             json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """NAT port forwarding rules."""
    emit_list(output(json_output, jsonl), client(ctx).networks.nat_rules.list(network_id),
              NAT_COLUMNS, every, empty="no NAT rules")


@nat.command("add")
def add_nat(
    ctx: typer.Context, network_id: NetworkId,
    thing: Annotated[str, typer.Option("--thing", help="Thing id (with a locked IP).")],
    public_port: Annotated[int, typer.Option("--public-port", min=1, max=65535)],
    private_port: Annotated[int, typer.Option("--private-port", min=1, max=65535)],
    protocol: Annotated[str, typer.Option("--protocol", help="TCP or UDP.")] = "TCP",
    description: Annotated[str | None, typer.Option("--description")] = None,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Forward a public port of the Network's NAT address to a Thing."""
    rule = client(ctx).networks.nat_rules.create(
        network_id, thing_id=thing, public_port=public_port, private_port=private_port,
        protocol=protocol.upper(), description=description)
    output(json_output, jsonl).detail(rule)


@nat.command("delete")
def delete_nat(ctx: typer.Context, network_id: NetworkId,
               rule_id: Annotated[str, typer.Argument(help="NAT rule id.")]) -> None:
    """Delete a NAT rule."""
    client(ctx).networks.nat_rules.delete(network_id, rule_id)
    output(False, False).note(f"deleted {rule_id}")


@vpn.command("list")
def list_vpn(ctx: typer.Context, network_id: NetworkId, every: AllOpt = False,
             json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """IPSec tunnels."""
    emit_list(output(json_output, jsonl), client(ctx).networks.vpn_tunnels.list(network_id),
              VPN_COLUMNS, every, empty="no VPN tunnels")


@vpn.command("get")
def get_vpn(ctx: typer.Context, network_id: NetworkId,
            tunnel_id: Annotated[str, typer.Argument(help="Tunnel id.")],
            json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """One IPSec tunnel."""
    output(json_output, jsonl).detail(client(ctx).networks.vpn_tunnels.get(network_id, tunnel_id))


@vpn.command("add")
def add_vpn(
    ctx: typer.Context, network_id: NetworkId,
    name: Annotated[str, typer.Option("--name")],
    remote_gateway: Annotated[str, typer.Option(
        "--remote-gateway", help="Your VPN gateway's public IPv4 address.")],
    remote_subnet: Annotated[list[str], typer.Option(
        "--remote-subnet", metavar="CIDR", help="A subnet behind your gateway (repeatable).")],
    local_subnet: Annotated[list[str] | None, typer.Option(
        "--local-subnet", metavar="CIDR", help="Default: the Network's pools (repeatable).")] = None,
    psk: Annotated[str | None, typer.Option(
        "--psk", help="Pre-shared key, 16-128 characters (default: $SIMPLANE_VPN_PSK, "
                      "else prompted).")] = None,
    dpd_seconds: Annotated[int | None, typer.Option("--dpd-seconds")] = None,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Create an IKEv2 IPSec tunnel (a route per remote subnet comes with it)."""
    psk = psk or os.environ.get("SIMPLANE_VPN_PSK") or typer.prompt(
        "Pre-shared key", hide_input=True, confirmation_prompt=True)
    tunnel = client(ctx).networks.vpn_tunnels.create(
        network_id, name=name, remote_gateway=remote_gateway, remote_subnets=remote_subnet,
        local_subnets=local_subnet or None, psk=psk, dpd_seconds=dpd_seconds)
    output(json_output, jsonl).detail(tunnel)


@vpn.command("peer-config")
def peer_config(ctx: typer.Context, network_id: NetworkId,
                tunnel_id: Annotated[str, typer.Argument(help="Tunnel id.")]) -> None:
    """strongSwan swanctl.conf for your side of the tunnel."""
    output(False, False).text(client(ctx).networks.peer_config(network_id, tunnel_id))


# ip profiles ----------------------------------------------------------------------------------

ProfileId = Annotated[str, typer.Argument(help="IP Profile id.")]


@profiles.command("list")
def list_profiles(ctx: typer.Context, limit: LimitOpt = None, cursor: CursorOpt = None,
                  every: AllOpt = False, json_output: JsonOpt = False,
                  jsonl: JsonlOpt = False) -> None:
    """IP Profiles."""
    emit_list(output(json_output, jsonl),
              client(ctx).ip_profiles.list(limit=limit, cursor=cursor), PROFILE_COLUMNS, every)


@profiles.command("get")
def get_profile(ctx: typer.Context, profile_id: ProfileId, json_output: JsonOpt = False,
                jsonl: JsonlOpt = False) -> None:
    """One IP Profile with its rules."""
    profile = client(ctx).ip_profiles.get(profile_id)
    out = output(json_output, jsonl)
    if out.structured:
        out.detail(profile)
        return
    out.detail(profile, [("id", lambda p: p.id), ("name", lambda p: p.name),
                         ("description", lambda p: p.description),
                         ("default", lambda p: p.is_default),
                         ("inbound default", lambda p: p.inbound.default_action),
                         ("outbound default", lambda p: p.outbound.default_action),
                         ("groups", lambda p: p.things_group_count)])
    out.items(profile.inbound.rules + profile.outbound.rules, RULE_COLUMNS, empty="no rules")


@profiles.command("create")
def create_profile(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Profile name.")],
    description: Annotated[str | None, typer.Option("--description")] = None,
    inbound_default: Annotated[str | None, typer.Option(
        "--inbound-default", help="ALLOW (default) or DENY.")] = None,
    outbound_default: Annotated[str | None, typer.Option(
        "--outbound-default", help="ALLOW (default) or DENY.")] = None,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Create an IP Profile."""
    output(json_output, jsonl).detail(client(ctx).ip_profiles.create(
        name, description=description, inbound_default=inbound_default,
        outbound_default=outbound_default))


@rules.command("list")
def list_rules(ctx: typer.Context, profile_id: ProfileId,
               chain: Annotated[str | None, typer.Option("--chain")] = None,
               every: AllOpt = False, json_output: JsonOpt = False,
               jsonl: JsonlOpt = False) -> None:
    """Firewall rules, by chain and position."""
    emit_list(output(json_output, jsonl),
              client(ctx).ip_profiles.rules.list(profile_id, chain=chain), RULE_COLUMNS, every,
              empty="no rules")


@rules.command("add")
def add_rule(
    ctx: typer.Context, profile_id: ProfileId,
    chain: Annotated[str, typer.Option("--chain", help="INBOUND or OUTBOUND.")],
    action: Annotated[str, typer.Option("--action", help="ALLOW or DENY.")],
    protocol: Annotated[str | None, typer.Option(
        "--protocol", help="ANY (default), TCP, UDP or ICMP.")] = None,
    remote: Annotated[str | None, typer.Option(
        "--remote", help="Remote CIDR (default 0.0.0.0/0).")] = None,
    ports: Annotated[str | None, typer.Option(
        "--ports", help='"443" or "1000-2000" (TCP/UDP only).')] = None,
    position: Annotated[int | None, typer.Option(
        "--position", help="Insert at this position (default: append).")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Add a firewall rule (first match by position decides)."""
    rule = client(ctx).ip_profiles.rules.create(
        profile_id, chain=chain.upper(), action=action.upper(),
        protocol=protocol.upper() if protocol else None, remote_cidr=remote, ports=ports,
        position=position, description=description)
    output(json_output, jsonl).detail(rule)


@rules.command("delete")
def delete_rule(ctx: typer.Context, profile_id: ProfileId,
                rule_id: Annotated[str, typer.Argument(help="Rule id.")]) -> None:
    """Delete a firewall rule."""
    client(ctx).ip_profiles.rules.delete(profile_id, rule_id)
    output(False, False).note(f"deleted {rule_id}")


@profiles.command("evaluate")
def evaluate(
    ctx: typer.Context, profile_id: ProfileId,
    direction: Annotated[str, typer.Option("--direction", help="INBOUND or OUTBOUND.")],
    protocol: Annotated[str, typer.Option("--protocol", help="TCP, UDP or ICMP.")],
    remote_ip: Annotated[str, typer.Option("--remote-ip")],
    port: Annotated[int | None, typer.Option("--port")] = None,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Would the profile allow this packet, and which rule decides?"""
    result = client(ctx).ip_profiles.evaluate(
        profile_id, direction=direction.upper(), protocol=protocol.upper(),
        remote_ip=remote_ip, port=port)
    output(json_output, jsonl).detail(result, [
        ("action", lambda r: r.action), ("rule", lambda r: r.rule_id or "(default action)")])


# trace ----------------------------------------------------------------------------------------

TRACE_COLUMNS = [("STAGE", lambda s: s.stage), ("RESULT", lambda s: s.result),
                 ("DETAIL", lambda s: s.detail), ("RULE", lambda s: s.rule_id)]


def trace(
    ctx: typer.Context, network_id: NetworkId,
    direction: Annotated[str, typer.Option(
        "--direction", help="OUTBOUND, INBOUND or DEVICE_TO_DEVICE.")],
    protocol: Annotated[str, typer.Option("--protocol", help="TCP, UDP or ICMP.")],
    source_ip: Annotated[str, typer.Option("--source-ip")],
    destination_ip: Annotated[str, typer.Option("--destination-ip")],
    source_port: Annotated[int | None, typer.Option("--source-port")] = None,
    destination_port: Annotated[int | None, typer.Option("--destination-port")] = None,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Follow a packet through a Network: firewall, routes, NAT, VPN (nothing is sent)."""
    result = client(ctx).networks.trace(
        network_id, direction=direction.upper(), protocol=protocol.upper(), source_ip=source_ip,
        source_port=source_port, destination_ip=destination_ip,
        destination_port=destination_port)
    out = output(json_output, jsonl)
    if out.structured:
        out.detail(result)
        return
    out.detail(result, [("verdict", lambda r: r.verdict), ("reason", lambda r: r.reason)])
    out.items(result.steps, TRACE_COLUMNS)


def register(app: typer.Typer) -> None:
    networks.add_typer(nat, name="nat")
    networks.add_typer(vpn, name="vpn")
    profiles.add_typer(rules, name="rules")
    app.add_typer(groups, name="groups")
    app.add_typer(networks, name="networks")
    app.add_typer(profiles, name="ip-profiles")
    app.command("trace")(trace)
