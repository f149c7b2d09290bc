"""Tariffs (with their history), closed billing cycles and their frozen lines."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdColumn, UTCDateTime, account_column, created_column, id_column

Money = Numeric(18, 6)


class TariffVersion(Base):
    """The tariff in force from cycle `effective_from` (YYYY-MM) until the next version."""

    __tablename__ = "tariffs"
    __table_args__ = (UniqueConstraint("account_id", "effective_from"),)

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    effective_from: Mapped[str] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(3))
    monthly_fee: Mapped[Decimal] = mapped_column(Money)
    price_per_mb: Mapped[Decimal] = mapped_column(Money)
    price_per_sms_mt: Mapped[Decimal] = mapped_column(Money)
    price_per_sms_mo: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = created_column()


class BillingCycle(Base):
    """A CLOSED cycle of one account; its lines are frozen in `billing_lines`."""

    __tablename__ = "billing_cycles"
    __table_args__ = (UniqueConstraint("account_id", "period"),)

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    period: Mapped[str] = mapped_column(String(7))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BillingLine(Base):
    __tablename__ = "billing_lines"
    __table_args__ = (Index("ix_billing_lines_account_id_period_thing_id", "account_id", "period",
                            "thing_id", unique=True),)

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    period: Mapped[str] = mapped_column(String(7))
    thing_id: Mapped[str] = mapped_column(IdColumn)
    iccid: Mapped[str] = mapped_column(String(20))
    things_group_id: Mapped[str] = mapped_column(IdColumn)
    monthly_fee: Mapped[Decimal] = mapped_column(Money)
    data_bytes: Mapped[int] = mapped_column(BigInteger)
    data_charge: Mapped[Decimal] = mapped_column(Money)
    sms_mt: Mapped[int] = mapped_column(Integer)
    sms_mo: Mapped[int] = mapped_column(Integer)
    sms_charge: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
