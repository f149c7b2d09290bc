from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdColumn, account_column, created_column, id_column, updated_column


class IpProfile(Base):
    __tablename__ = "ip_profiles"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(default=False)
    inbound_default_action: Mapped[str] = mapped_column(String(5), default="ALLOW")
    outbound_default_action: Mapped[str] = mapped_column(String(5), default="ALLOW")
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class FirewallRule(Base):
    __tablename__ = "firewall_rules"
    __table_args__ = (
        Index("ix_firewall_rules_profile_chain_position", "ip_profile_id", "chain", "position"),
    )

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    ip_profile_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("ip_profiles.id", ondelete="CASCADE"))
    chain: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(5))
    protocol: Mapped[str] = mapped_column(String(4))
    remote_cidr: Mapped[str] = mapped_column(String(18), default="0.0.0.0/0")
    port_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_to: Mapped[int | None] = mapped_column(Integer, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
