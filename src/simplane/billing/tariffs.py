"""Tariff versions: a change applies from the next cycle, and every version is kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.ids import new_id
from ..models import Account, TariffVersion, utcnow
from .cycles import next_period, period_of


@dataclass(frozen=True)
class Tariff:
    currency: str
    monthly_fee: Decimal
    price_per_mb: Decimal
    price_per_sms_mt: Decimal
    price_per_sms_mo: Decimal
    effective_from: str


def _of(version: TariffVersion) -> Tariff:
    return Tariff(version.currency, version.monthly_fee, version.price_per_mb,
                  version.price_per_sms_mt, version.price_per_sms_mo, version.effective_from)


def record_version(session: Session, account: Account, effective_from: str) -> None:
    """Store the account's tariff columns as the version in force from `effective_from`."""
    existing = session.scalar(select(TariffVersion).where(
        TariffVersion.account_id == account.id, TariffVersion.effective_from == effective_from))
    if existing is None:
        existing = TariffVersion(id=new_id("tariff"), account_id=account.id,
                                 effective_from=effective_from)
        session.add(existing)
    existing.currency = account.currency
    existing.monthly_fee = account.monthly_fee
    existing.price_per_mb = account.price_per_mb
    existing.price_per_sms_mt = account.price_per_sms_mt
    existing.price_per_sms_mo = account.price_per_sms_mo
    existing.created_at = utcnow()
    session.flush()


def record_initial(session: Session, account: Account) -> None:
    record_version(session, account, period_of(account.created_at))


def record_change(session: Session, account: Account, now: datetime | None = None) -> str:
    """A re-pricing applies from the next cycle: the open cycle keeps the price it began with."""
    effective = next_period(period_of(now or utcnow()))
    record_version(session, account, effective)
    return effective


def tariff_for(session: Session, account_id: str, period: str) -> Tariff | None:
    version = session.scalar(select(TariffVersion).where(
        TariffVersion.account_id == account_id, TariffVersion.effective_from <= period)
        .order_by(TariffVersion.effective_from.desc()).limit(1))
    return _of(version) if version else None


def scheduled_after(session: Session, account_id: str, period: str) -> Tariff | None:
    version = session.scalar(select(TariffVersion).where(
        TariffVersion.account_id == account_id, TariffVersion.effective_from > period)
        .order_by(TariffVersion.effective_from).limit(1))
    return _of(version) if version else None
