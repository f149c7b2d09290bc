"""IPSec VPN tunnels (IKEv2, PSK) and the strongSwan configuration for the customer's side."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..core import crypto
from ..core.config import Settings
from ..core.errors import FieldError, bad_field, not_found, precondition, validation_error
from ..core.ids import new_id
from ..models import IpPool, Network, Route, VpnTunnel, utcnow
from . import routing
from .schemas import VpnTunnelCreate, VpnTunnelOut, VpnTunnelPatch

# strongSwan's proposal keywords (swanctl.conf "proposals" / "esp_proposals"), grouped by the
# transform they name. A proposal is keywords joined by '-'.
ENCRYPTION = {
    "aes128", "aes192", "aes256", "aes128ctr", "aes192ctr", "aes256ctr",
    "camellia128", "camellia192", "camellia256", "3des", "cast128", "blowfish128",
}
AEAD = {
    f"{cipher}{suffix}"
    for cipher in ("aes128", "aes192", "aes256")
    for suffix in ("gcm8", "gcm12", "gcm16", "gcm64", "gcm96", "gcm128", "ccm8", "ccm12",
                   "ccm16", "ccm64", "ccm96", "ccm128")
} | {"chacha20poly1305"}
INTEGRITY = {"md5", "sha1", "sha256", "sha384", "sha512", "aesxcbc", "aescmac", "sha256_96",
             "sha2_256", "sha2_384", "sha2_512", "md5_128", "sha1_160", "camelliaxcbc"}
PRF = {"prfmd5", "prfsha1", "prfsha256", "prfsha384", "prfsha512", "prfaesxcbc", "prfaescmac",
       "prfcamelliaxcbc"}
DH = {"modp1024", "modp1536", "modp2048", "modp3072", "modp4096", "modp6144", "modp8192",
      "modp1024s160", "modp2048s224", "modp2048s256", "ecp192", "ecp224", "ecp256", "ecp384",
      "ecp521", "ecp224bp", "ecp256bp", "ecp384bp", "ecp512bp", "curve25519", "x25519",
      "curve448", "x448"}
ESN = {"esn", "noesn"}
# Without an explicit PRF, strongSwan derives the IKE PRF from the integrity algorithm; the
# truncated sha256_96 has no PRF counterpart ("a PRF algorithm is mandatory in IKE proposals").
INTEGRITY_IMPLYING_PRF = INTEGRITY - {"sha256_96"}


def proposal_problem(proposal: str, *, ike: bool) -> str | None:
    tokens = proposal.lower().split("-")
    known = ENCRYPTION | AEAD | INTEGRITY | DH | (PRF if ike else ESN)
    unknown = [t for t in tokens if t not in known]
    if unknown:
        return f"{proposal!r}: unknown algorithm {unknown[0]!r}"
    if not any(t in ENCRYPTION or t in AEAD for t in tokens):
        return f"{proposal!r} names no encryption algorithm"
    if any(t in ENCRYPTION for t in tokens) and not any(t in INTEGRITY for t in tokens):
        return f"{proposal!r}: a non-AEAD cipher needs an integrity algorithm"
    if any(t in AEAD for t in tokens) and any(t in ENCRYPTION for t in tokens):
        return f"{proposal!r} mixes AEAD and classic ciphers"
    if ike and not any(t in DH for t in tokens):
        return f"{proposal!r}: an IKE proposal needs a key exchange (DH) group"
    if ike and not any(t in PRF or t in INTEGRITY_IMPLYING_PRF for t in tokens):
        return f"{proposal!r}: an IKE proposal needs a PRF (e.g. prfsha256)"
    return None


def _validate_proposals(field: str, proposals: Sequence[str], *, ike: bool) -> list[str]:
    errors = [FieldError(f"{field}.{i}", problem) for i, p in enumerate(proposals)
              if (problem := proposal_problem(p, ike=ike))]
    if errors:
        raise validation_error("; ".join(e.message for e in errors), errors)
    return [p.lower() for p in proposals]


def _validate_gateway(address: str) -> str:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise bad_field("remote_gateway", f"{address!r} is not an IPv4 address") from None
    if not ip.is_global:
        raise bad_field("remote_gateway", f"{address} is not a public IPv4 address")
    return str(ip)


def _validate_subnets(field: str, subnets: Sequence[str]) -> list[str]:
    parsed = [routing.parse_destination(s, f"{field}.{i}") for i, s in enumerate(subnets)]
    for i, a in enumerate(parsed):
        for b in parsed[i + 1:]:
            if a.overlaps(b):
                raise bad_field(field, f"{a} and {b} overlap")
    return [str(p) for p in parsed]


def _pools(session: Session, network: Network) -> list[IpPool]:
    return list(session.scalars(select(IpPool).where(IpPool.network_id == network.id)
                                .order_by(IpPool.first_address)))


def _check_remote_overlap(session: Session, network: Network, remote: Sequence[str]) -> None:
    for pool in _pools(session, network):
        pool_net = ipaddress.IPv4Network(pool.cidr)
        for subnet in remote:
            if pool_net.overlaps(ipaddress.IPv4Network(subnet)):
                raise precondition("overlap", f"remote subnet {subnet} overlaps the Network's "
                                   f"pool {pool.cidr}")


def local_subnets(session: Session, network: Network, tunnel: VpnTunnel) -> list[str]:
    return tunnel.local_subnets or [p.cidr for p in _pools(session, network)]


def view(session: Session, settings: Settings, network: Network, tunnel: VpnTunnel) -> VpnTunnelOut:
    return VpnTunnelOut(
        id=tunnel.id, network_id=tunnel.network_id, name=tunnel.name,
        remote_gateway=tunnel.remote_gateway, remote_subnets=tunnel.remote_subnets,
        local_subnets=local_subnets(session, network, tunnel), ike_version=2,
        ike_proposals=tunnel.ike_proposals, esp_proposals=tunnel.esp_proposals,
        dpd_seconds=tunnel.dpd_seconds,
        local_gateway=network.vpn_gateway_ip or settings.vpn_gateway_ip,
        status=tunnel.status, status_changed_at=tunnel.status_changed_at,  # type: ignore[arg-type]
        created_at=tunnel.created_at, updated_at=tunnel.updated_at)


def _replace_routes(session: Session, network: Network, tunnel: VpnTunnel) -> None:
    session.execute(delete(Route).where(Route.vpn_tunnel_id == tunnel.id))
    session.flush()
    for subnet in tunnel.remote_subnets:
        routing.add_route(session, network, subnet, "VPN_TUNNEL", tunnel.id)


def create_tunnel(session: Session, settings: Settings, network: Network,
                  body: VpnTunnelCreate) -> VpnTunnel:
    remote = _validate_subnets("remote_subnets", body.remote_subnets)
    local = _validate_subnets("local_subnets", body.local_subnets) if body.local_subnets else None
    tunnel = VpnTunnel(
        id=new_id("vpn_tunnel"), account_id=network.account_id, network_id=network.id,
        name=body.name, remote_gateway=_validate_gateway(body.remote_gateway),
        remote_subnets=remote, local_subnets=local, ike_version=2,
        ike_proposals=_validate_proposals("ike_proposals", body.ike_proposals, ike=True),
        esp_proposals=_validate_proposals("esp_proposals", body.esp_proposals, ike=False),
        psk_encrypted=crypto.encrypt(settings.resolved_secret_key(), body.psk),
        dpd_seconds=body.dpd_seconds, status="DOWN", status_changed_at=utcnow())
    _check_remote_overlap(session, network, remote)
    session.add(tunnel)
    session.flush()
    _replace_routes(session, network, tunnel)
    return tunnel


def update_tunnel(session: Session, settings: Settings, network: Network, tunnel: VpnTunnel,
                  body: VpnTunnelPatch) -> None:
    fields = body.model_fields_set
    if body.name is not None:
        tunnel.name = body.name
    if body.remote_gateway is not None:
        tunnel.remote_gateway = _validate_gateway(body.remote_gateway)
    if body.ike_proposals is not None:
        tunnel.ike_proposals = _validate_proposals("ike_proposals", body.ike_proposals, ike=True)
    if body.esp_proposals is not None:
        tunnel.esp_proposals = _validate_proposals("esp_proposals", body.esp_proposals, ike=False)
    if body.psk is not None:
        tunnel.psk_encrypted = crypto.encrypt(settings.resolved_secret_key(), body.psk)
    if body.dpd_seconds is not None:
        tunnel.dpd_seconds = body.dpd_seconds
    if "local_subnets" in fields:  # null: follow the Network's pools again
        tunnel.local_subnets = (_validate_subnets("local_subnets", body.local_subnets)
                                if body.local_subnets else None)
    if body.remote_subnets is not None:
        remote = _validate_subnets("remote_subnets", body.remote_subnets)
        _check_remote_overlap(session, network, remote)
        tunnel.remote_subnets = remote
        _replace_routes(session, network, tunnel)
    tunnel.updated_at = utcnow()
    session.flush()


def require_tunnel(session: Session, network: Network, tunnel_id: str, *,
                   for_update: bool = False) -> VpnTunnel:
    statement = select(VpnTunnel).where(VpnTunnel.account_id == network.account_id,
                                        VpnTunnel.network_id == network.id,
                                        VpnTunnel.id == tunnel_id)
    tunnel = session.scalar(statement.with_for_update() if for_update else statement)
    if tunnel is None:
        raise not_found("VPN tunnel", tunnel_id)
    return tunnel


def delete_tunnel(session: Session, tunnel: VpnTunnel) -> None:
    session.execute(delete(Route).where(Route.vpn_tunnel_id == tunnel.id))
    session.delete(tunnel)
    session.flush()


def swanctl_conf(session: Session, settings: Settings, network: Network, tunnel: VpnTunnel, *,
                 include_psk: bool) -> str:
    """A swanctl.conf for the customer's gateway: it initiates to the platform's gateway."""
    ours = network.vpn_gateway_ip or settings.vpn_gateway_ip
    name = f"simplane-{tunnel.id}"
    if include_psk:
        psk = crypto.decrypt(settings.resolved_secret_key(), tunnel.psk_encrypted)
        # 0s<base64>: strongSwan's encoding for binary secrets, immune to quoting.
        secret = "0s" + base64.b64encode(psk.encode()).decode()
        secret_comment = ""
    else:
        secret = '"REPLACE-WITH-THE-PRE-SHARED-KEY"'
        secret_comment = "    # Your role may not read the pre-shared key: fill it in here.\n"
    return (
        f"# strongSwan swanctl.conf for the customer side of simplane VPN tunnel {tunnel.id}\n"
        f"# ({tunnel.name}). Install as /etc/swanctl/conf.d/{name}.conf, then:\n"
        f"#   swanctl --load-all\n"
        "connections {\n"
        f"  {name} {{\n"
        "    version = 2\n"
        f"    local_addrs = {tunnel.remote_gateway}\n"
        f"    remote_addrs = {ours}\n"
        f"    proposals = {','.join(tunnel.ike_proposals)}\n"
        f"    dpd_delay = {tunnel.dpd_seconds}s\n"
        "    local {\n"
        "      auth = psk\n"
        f"      id = {tunnel.remote_gateway}\n"
        "    }\n"
        "    remote {\n"
        "      auth = psk\n"
        f"      id = {ours}\n"
        "    }\n"
        "    children {\n"
        f"      {name} {{\n"
        f"        local_ts = {','.join(tunnel.remote_subnets)}\n"
        f"        remote_ts = {','.join(local_subnets(session, network, tunnel))}\n"
        f"        esp_proposals = {','.join(tunnel.esp_proposals)}\n"
        "        dpd_action = restart\n"
        "        start_action = start\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n"
        "secrets {\n"
        f"  ike-{name} {{\n"
        f"    id-1 = {tunnel.remote_gateway}\n"
        f"    id-2 = {ours}\n"
        f"{secret_comment}"
        f"    secret = {secret}\n"
        "  }\n"
        "}\n"
    )
