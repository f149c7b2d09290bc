"""What a customer configures about how its Things reach the world: leases, routes, NAT, VPN."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import (
    Base,
    IdColumn,
    UTCDateTime,
    account_column,
    created_column,
    id_column,
    updated_column,
)


class IpLease(Base):
    """An address held by a Thing on a Network: LOCKED (never expires) or DYNAMIC.

    A DYNAMIC lease has no expiry while its session is open; Stop starts its clock
    (`expires_at`). Rows exist only for addresses in use, so a /16 pool costs nothing until
    its addresses are handed out.
    """

    __tablename__ = "ip_leases"
    __table_args__ = (
        UniqueConstraint("network_id", "address"),
        UniqueConstraint("network_id", "thing_id"),
        Index("ix_ip_leases_pool_id_kind", "pool_id", "kind"),
        # Every allocation purges the Network's expired leases first.
        Index("ix_ip_leases_network_id_expires_at", "network_id", "expires_at"),
    )

    id: Mapped[str] = id_column()
    # No index on the account alone (migration 0015): leases are read by Network, pool or
    # Thing, and every Stop rewrites a lease's row (its expiry), one entry in each index.
    account_id: Mapped[str] = account_column(indexed=False)
    network_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("networks.id", ondelete="CASCADE"))
    pool_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("ip_pools.id"))
    thing_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("things.id", ondelete="CASCADE"),
                                          index=True)
    address: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class Route(Base):
    __tablename__ = "routes"
    __table_args__ = (UniqueConstraint("network_id", "destination"),)

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    network_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("networks.id", ondelete="CASCADE"),
                                            index=True)
    destination: Mapped[str] = mapped_column(String(18))
    prefix_length: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(12))
    vpn_tunnel_id: Mapped[str | None] = mapped_column(
        IdColumn, ForeignKey("vpn_tunnels.id", ondelete="CASCADE"), nullable=True, index=True)
    created_at: Mapped[datetime] = created_column()


class NatRule(Base):
    __tablename__ = "nat_rules"
    __table_args__ = (UniqueConstraint("public_ip", "protocol", "public_port"),)

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    network_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("networks.id", ondelete="CASCADE"),
                                            index=True)
    thing_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("things.id", ondelete="CASCADE"),
                                          index=True)
    protocol: Mapped[str] = mapped_column(String(3))
    public_ip: Mapped[str] = mapped_column(String(15))
    public_port: Mapped[int] = mapped_column(Integer)
    private_port: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class VpnTunnel(Base):
    __tablename__ = "vpn_tunnels"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    network_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("networks.id", ondelete="CASCADE"),
                                            index=True)
    name: Mapped[str] = mapped_column(String(200))
    remote_gateway: Mapped[str] = mapped_column(String(15))
    remote_subnets: Mapped[list[str]] = mapped_column(JSON)
    # None: follow the Network's pools as they change.
    local_subnets: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    ike_version: Mapped[int] = mapped_column(Integer, default=2)
    ike_proposals: Mapped[list[str]] = mapped_column(JSON)
    esp_proposals: Mapped[list[str]] = mapped_column(JSON)
    psk_encrypted: Mapped[str] = mapped_column(Text)
    dpd_seconds: Mapped[int] = mapped_column(Integer, default=30)
    status: Mapped[str] = mapped_column(String(10), default="DOWN")
    status_changed_at: Mapped[datetime] = created_column()
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
