from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, account_column, created_column, id_column, updated_column


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
