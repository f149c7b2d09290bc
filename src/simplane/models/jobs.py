"""Bulk actions and their per-Thing items; webhooks and their delivery outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdColumn, UTCDateTime, account_column, created_column, id_column, updated_column


class BulkAction(Base):
    __tablename__ = "bulk_actions"
    __table_args__ = (Index("ix_bulk_actions_status", "status"),)

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    action: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dry_run: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(10))
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    actor_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = created_column()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The thing_id through which every item has been processed (items go in thing_id order);
    # committed with each batch.
    done_through: Mapped[str | None] = mapped_column(String(40), nullable=True)


class BulkActionItem(Base):
    __tablename__ = "bulk_action_items"
    # Only FAILED items are listed often enough, and few enough, to be worth an index; the
    # next batch is a range of the primary key.
    __table_args__ = (Index("ix_bulk_action_items_failed", "bulk_action_id", "thing_id",
                            postgresql_where=text("status = 'FAILED'"),
                            sqlite_where=text("status = 'FAILED'")),)

    # No foreign key: checking it per row was a third of the cost of creating a job of a
    # million items; only the bulk service writes items, in their job's own transaction.
    bulk_action_id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    thing_id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    account_id: Mapped[str] = mapped_column(IdColumn)
    # NULL until the item has an outcome of its own: up to its job's done_through that means
    # SUCCEEDED, after it PENDING (bulk.service.item_status).
    status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(300), nullable=True)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    url: Mapped[str] = mapped_column(String(2000))
    # ",type1,type2," so one LIKE finds the subscribers of an event on both engines; "," = all.
    event_types: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id", "webhook_id"),
    )

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    webhook_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(IdColumn)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = created_column()
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = created_column()
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
