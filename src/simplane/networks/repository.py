from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..models import IpAllocation, IpPool, NatRule, Network, Route, ThingsGroup, VpnTunnel


def get_network(session: Session, account_id: str, network_id: str, *,
                for_update: bool = False) -> Network | None:
    statement = select(Network).where(Network.account_id == account_id, Network.id == network_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def networks_query(account_id: str) -> Select[tuple[Network]]:
    return select(Network).where(Network.account_id == account_id)


def pools_of_networks(session: Session, account_id: str,
                      network_ids: list[str]) -> dict[str, list[IpPool]]:
    pools: dict[str, list[IpPool]] = {network_id: [] for network_id in network_ids}
    if network_ids:
        for pool in session.scalars(select(IpPool).where(
                IpPool.account_id == account_id, IpPool.network_id.in_(network_ids))
                .order_by(IpPool.first_address)):
            pools[pool.network_id].append(pool)
    return pools


def account_pools(session: Session, account_id: str) -> list[IpPool]:
    return list(session.scalars(select(IpPool).where(IpPool.account_id == account_id)))


def allocations(session: Session, account_id: str) -> list[IpAllocation]:
    return list(session.scalars(select(IpAllocation).where(IpAllocation.account_id == account_id)))


def get_pool(session: Session, account_id: str, network_id: str, pool_id: str, *,
             for_update: bool = False) -> IpPool | None:
    statement = select(IpPool).where(IpPool.account_id == account_id,
                                     IpPool.network_id == network_id, IpPool.id == pool_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def pools_query(account_id: str, network_id: str) -> Select[tuple[IpPool]]:
    return select(IpPool).where(IpPool.account_id == account_id, IpPool.network_id == network_id)


def group_using(session: Session, account_id: str, network_id: str) -> str | None:
    return session.scalar(select(ThingsGroup.id).where(
        ThingsGroup.account_id == account_id, ThingsGroup.network_id == network_id).limit(1))


def taken_nat_ips(session: Session) -> set[str]:
    return set(session.scalars(select(Network.nat_public_ip).where(
        Network.nat_public_ip.is_not(None))))


def routes_query(account_id: str, network_id: str) -> Select[tuple[Route]]:
    return select(Route).where(Route.account_id == account_id, Route.network_id == network_id)


def nat_rules_query(account_id: str, network_id: str) -> Select[tuple[NatRule]]:
    return select(NatRule).where(NatRule.account_id == account_id,
                                 NatRule.network_id == network_id)


def tunnels_query(account_id: str, network_id: str) -> Select[tuple[VpnTunnel]]:
    return select(VpnTunnel).where(VpnTunnel.account_id == account_id,
                                   VpnTunnel.network_id == network_id)
