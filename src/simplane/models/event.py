from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdColumn, UTCDateTime, account_column, created_column, id_column


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_account_id_type", "account_id", "type"),
        Index("ix_events_account_id_thing_id", "account_id", "thing_id"),
    )

    id: Mapped[str] = id_column()
    # No foreign key: events are written by the platform for the account whose change they
    # record, and accounts are never deleted (migration 0011).
    account_id: Mapped[str] = mapped_column(IdColumn)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = created_column()
    thing_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    occurred_at: Mapped[datetime] = created_column()
    actor_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    resource_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    changed_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(64))


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # None for a platform-level network credential, which belongs to no account.
    account_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True, index=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
