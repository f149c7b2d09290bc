"""Networks and their IP pools, inside the account's allocation (its IP quota)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..core.config import Settings
from ..core.db import advisory_lock
from ..core.errors import FieldError, bad_field, not_found, precondition, validation_error
from ..core.ids import new_id
from ..models import IpLease, IpPool, Network, VpnTunnel, utcnow
from . import ipam, leases, repository
from .schemas import IpPoolCreate, IpPoolOut, IpPoolPatch, NetworkCreate, NetworkOut, NetworkPatch

NAT_LOCK = "simplane:nat-public-ips"
DEFAULT_DNS = ["8.8.8.8", "1.1.1.1"]


def _ipam_lock(session: Session, account_id: str) -> None:
    advisory_lock(session, f"simplane:ipam:{account_id}")


def pool_views(session: Session, pools: Sequence[IpPool]) -> list[IpPoolOut]:
    usage = leases.pool_usage(session, [p.id for p in pools])
    views = []
    for pool in pools:
        leased, locked = usage[pool.id]
        usable = leases.usable_count(pool.first_address, pool.last_address)
        views.append(IpPoolOut(
            id=pool.id, network_id=pool.network_id, cidr=pool.cidr,
            lease_seconds=pool.lease_seconds, size=pool.last_address - pool.first_address + 1,
            usable=usable, leased=leased, locked=locked, free=usable - leased - locked,
            created_at=pool.created_at, updated_at=pool.updated_at))
    return views


def network_views(session: Session, settings: Settings, account_id: str,
                  networks: Sequence[Network]) -> list[NetworkOut]:
    pools = repository.pools_of_networks(session, account_id, [n.id for n in networks])
    return [NetworkOut(
        id=n.id, name=n.name, apn=settings.apn, is_default=n.is_default,
        device_isolation=n.device_isolation, dns_servers=n.dns_servers,
        nat_public_ip=n.nat_public_ip, vpn_gateway_ip=n.vpn_gateway_ip,
        ip_pools=pool_views(session, pools[n.id]), created_at=n.created_at,
        updated_at=n.updated_at) for n in networks]


def network_view(session: Session, settings: Settings, network: Network) -> NetworkOut:
    return network_views(session, settings, network.account_id, [network])[0]


def require_network(session: Session, account_id: str, network_id: str, *,
                    for_update: bool = False) -> Network:
    network = repository.get_network(session, account_id, network_id, for_update=for_update)
    if network is None:
        raise not_found("network", network_id)
    return network


def _validate_dns(servers: list[str]) -> list[str]:
    errors = []
    for index, server in enumerate(servers):
        try:
            ipaddress.IPv4Address(server)
        except ValueError:
            errors.append(FieldError(f"dns_servers.{index}", f"{server!r} is not an IPv4 address"))
    if errors:
        raise validation_error("; ".join(e.message for e in errors), errors)
    return servers


def assign_nat_ip(session: Session, settings: Settings) -> str:
    """The next public address of SIMPLANE_NAT_PUBLIC_RANGE no Network has yet."""
    advisory_lock(session, NAT_LOCK)
    taken = repository.taken_nat_ips(session)
    space = ipaddress.IPv4Network(settings.nat_public_range)
    for address in space.hosts() if space.prefixlen < 31 else space:
        if str(address) not in taken:
            return str(address)
    raise precondition("nat_ip_exhausted", f"every public address of {space} is in use; "
                       "ask the operator to extend SIMPLANE_NAT_PUBLIC_RANGE")


def create_network(session: Session, settings: Settings, account_id: str,
                   body: NetworkCreate) -> Network:
    network = Network(id=new_id("network"), account_id=account_id, name=body.name,
                      is_default=False, device_isolation=body.device_isolation,
                      dns_servers=_validate_dns(body.dns_servers if body.dns_servers is not None
                                                else list(DEFAULT_DNS)),
                      nat_public_ip=assign_nat_ip(session, settings),
                      vpn_gateway_ip=settings.vpn_gateway_ip)
    session.add(network)
    session.flush()
    return network


def update_network(session: Session, network: Network, body: NetworkPatch) -> None:
    if body.name is not None:
        network.name = body.name
    if body.device_isolation is not None:
        network.device_isolation = body.device_isolation
    if body.dns_servers is not None:
        network.dns_servers = _validate_dns(body.dns_servers)
    network.updated_at = utcnow()
    session.flush()


def delete_network(session: Session, network: Network) -> None:
    if network.is_default:
        raise precondition("default_resource", f"{network.id} is the account's default Network")
    group = repository.group_using(session, network.account_id, network.id)
    if group is not None:
        raise precondition("in_use", f"Network {network.id} is used by Things Group {group}")
    leases.purge_expired(session, network.id)
    held = session.scalar(
        select(IpLease.id).where(IpLease.network_id == network.id)
        .limit(1))
    if held is not None:
        raise precondition("in_use", f"Network {network.id} still has leased or locked addresses")
    session.execute(delete(IpPool).where(IpPool.network_id == network.id))
    session.delete(network)
    session.flush()


# --- pools ---------------------------------------------------------------------------------

def _quota_exceeded(detail: str) -> Exception:
    return precondition("ip_quota_exceeded", detail + "; ask the operator for an IP allocation "
                        "extension (simplane accounts extend-ip)", "IP quota exceeded")


def _check_block(session: Session, account_id: str, cidr: str, ignore_pool: str | None) -> None:
    block = ipam.bounds(cidr)
    allocations = repository.allocations(session, account_id)
    if not any(a.first_address <= block[0] and block[1] <= a.last_address for a in allocations):
        raise _quota_exceeded(f"{cidr} is outside the account's IP allocation "
                              f"({', '.join(a.cidr for a in allocations)})")
    for pool in repository.account_pools(session, account_id):
        if pool.id != ignore_pool and ipam.overlaps((pool.first_address, pool.last_address), block):
            raise precondition("overlap", f"{cidr} overlaps pool {pool.cidr} ({pool.id})")


def _remote_subnets(session: Session, network_id: str) -> list[tuple[str, str]]:
    return [(tunnel_id, subnet) for tunnel_id, subnets in session.execute(
        select(VpnTunnel.id, VpnTunnel.remote_subnets).where(VpnTunnel.network_id == network_id))
        for subnet in subnets]


def _check_remote_subnets(session: Session, network_id: str, cidr: str) -> None:
    """A pool may not take addresses a VPN tunnel of its Network routes to the remote side."""
    block = ipam.bounds(cidr)
    for tunnel_id, subnet in _remote_subnets(session, network_id):
        if ipam.overlaps(ipam.bounds(subnet), block):
            raise precondition("overlap", f"{cidr} overlaps remote subnet {subnet} of VPN "
                               f"tunnel {tunnel_id}")


def _parse_cidr(cidr: str, field: str = "cidr") -> str:
    try:
        network = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as exc:
        raise bad_field(field, f"{cidr!r} is not an IPv4 network in CIDR form ({exc})") from None
    if not 8 <= network.prefixlen <= 29:
        raise bad_field(field, f"{cidr} has prefix /{network.prefixlen}; pools are /8 to /29")
    return str(network)


def create_pool(session: Session, network: Network, body: IpPoolCreate) -> IpPool:
    _ipam_lock(session, network.account_id)
    if body.cidr is not None:
        cidr = _parse_cidr(body.cidr)
        _check_block(session, network.account_id, cidr, None)
        _check_remote_subnets(session, network.id, cidr)
    else:
        taken = [(p.first_address, p.last_address)
                 for p in repository.account_pools(session, network.account_id)]
        taken += [ipam.bounds(subnet) for _, subnet in _remote_subnets(session, network.id)]
        within = [(a.first_address, a.last_address)
                  for a in repository.allocations(session, network.account_id)]
        found = ipam.first_free_block(within, taken, body.prefix_length)
        if found is None:
            raise _quota_exceeded(f"no free /{body.prefix_length} is left in the account's "
                                  "IP allocation")
        cidr = found
    first, last = ipam.bounds(cidr)
    pool = IpPool(id=new_id("ip_pool"), account_id=network.account_id, network_id=network.id,
                  cidr=cidr, first_address=first, last_address=last,
                  lease_seconds=body.lease_seconds)
    session.add(pool)
    session.flush()
    return pool


def resize_pool(session: Session, pool: IpPool, body: IpPoolPatch) -> None:
    """Growing takes the enclosing block (needs free allocation); shrinking keeps the start
    and may not cut out a leased or locked address."""
    if body.prefix_length is not None:
        _ipam_lock(session, pool.account_id)
        current = ipaddress.IPv4Network(pool.cidr)
        if body.prefix_length < current.prefixlen:
            target = current.supernet(new_prefix=body.prefix_length)
            _check_block(session, pool.account_id, str(target), pool.id)
            _check_remote_subnets(session, pool.network_id, str(target))
        elif body.prefix_length > current.prefixlen:
            target = ipaddress.IPv4Network((int(current.network_address), body.prefix_length))
            first, last = int(target.network_address), int(target.broadcast_address)
            cut = leases.leases_outside(session, pool, first + 2, last - 1)
            if cut:
                raise precondition("in_use", f"shrinking {pool.cidr} to {target} would cut out "
                                   f"{cut} leased or locked address(es)")
        else:
            target = current
        pool.cidr = str(target)
        pool.first_address, pool.last_address = ipam.bounds(pool.cidr)
    if body.lease_seconds is not None:
        pool.lease_seconds = body.lease_seconds
    pool.updated_at = utcnow()
    session.flush()


def delete_pool(session: Session, pool: IpPool) -> None:
    leases.purge_expired(session, pool.network_id)
    leased, locked = leases.pool_usage(session, [pool.id])[pool.id]
    if leased or locked:
        raise precondition("in_use", f"pool {pool.cidr} has {leased} leased and {locked} locked "
                           "address(es)")
    session.delete(pool)
    session.flush()
