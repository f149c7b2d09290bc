from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Account, IpAllocation, IpPool


def get_account(session: Session, account_id: str, *, for_update: bool = False) -> Account | None:
    statement = select(Account).where(Account.id == account_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def allocations(session: Session, account_id: str) -> list[IpAllocation]:
    return list(session.scalars(
        select(IpAllocation).where(IpAllocation.account_id == account_id)
        .order_by(IpAllocation.first_address)
    ))


def pooled_addresses(session: Session, account_id: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(IpPool.last_address - IpPool.first_address + 1), 0))
        .where(IpPool.account_id == account_id)
    )
    return int(total or 0)


def all_allocation_bounds(session: Session) -> list[tuple[int, int]]:
    """Platform-wide: which parts of the IP space are already granted to some account."""
    return [(r.first_address, r.last_address) for r in session.execute(
        select(IpAllocation.first_address, IpAllocation.last_address))]
