"""M2M SMS between the platform and Things, and the platform-level network credentials."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdColumn, UTCDateTime, account_column, created_column, id_column, updated_column


class SmsMessage(Base):
    __tablename__ = "sms_messages"
    __table_args__ = (
        Index("ix_sms_messages_status_expires_at", "status", "expires_at"),
        Index("ix_sms_messages_thing_id_status", "thing_id", "status"),
    )

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    thing_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("things.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(10))
    encoding: Mapped[str] = mapped_column(String(6))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    data_base64: Mapped[str | None] = mapped_column(Text, nullable=True)
    segments: Mapped[int] = mapped_column(Integer)
    validity_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class NetworkCredential(Base):
    """A platform-level client (an SMSC, a mediation system) that reaches only /v1/network/*."""

    __tablename__ = "network_credentials"

    id: Mapped[str] = id_column()
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_column()
