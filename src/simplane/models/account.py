from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdColumn, account_column, created_column, id_column, updated_column

Money = Numeric(18, 6)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    monthly_fee: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    price_per_mb: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    price_per_sms_mt: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    price_per_sms_mo: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class IpAllocation(Base):
    """A block of the platform's address space granted to one account (its IP quota)."""

    __tablename__ = "ip_allocations"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    cidr: Mapped[str] = mapped_column(String(18), unique=True)
    first_address: Mapped[int] = mapped_column(BigInteger, index=True)
    last_address: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_column()


class Network(Base):
    __tablename__ = "networks"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(default=False)
    device_isolation: Mapped[bool] = mapped_column(default=False)
    dns_servers: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: ["8.8.8.8", "1.1.1.1"]
    )
    nat_public_ip: Mapped[str | None] = mapped_column(String(15), nullable=True, unique=True)
    vpn_gateway_ip: Mapped[str | None] = mapped_column(String(15), nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class IpPool(Base):
    __tablename__ = "ip_pools"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    network_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("networks.id"), index=True)
    cidr: Mapped[str] = mapped_column(String(18))
    first_address: Mapped[int] = mapped_column(BigInteger, index=True)
    last_address: Mapped[int] = mapped_column(BigInteger)
    lease_seconds: Mapped[int] = mapped_column(Integer, default=86400)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
