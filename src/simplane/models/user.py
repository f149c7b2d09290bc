from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
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


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    # Lower-cased; one email is one user platform-wide.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="ACTIVE")
    # Tokens issued before this instant are refused (set when the user is disabled).
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class Credential(Base):
    """An API client id/secret pair of one user; only an argon2 hash of the secret is kept."""

    __tablename__ = "credentials"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    user_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = created_column()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
