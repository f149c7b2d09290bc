from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
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


class ThingsGroup(Base):
    __tablename__ = "things_groups"

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    network_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("networks.id"), index=True)
    ip_profile_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("ip_profiles.id"), index=True)
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class Thing(Base):
    __tablename__ = "things"
    __table_args__ = (
        Index("ix_things_account_id_state", "account_id", "state"),
        Index("ix_things_account_id_imei", "account_id", "imei"),
        # The list's order within an account (migration 0016): its first page reads `limit`
        # rows whatever other accounts hold.
        Index("ix_things_account_id_id", "account_id", "id"),
        # No index on ip_address: every attach writes it, and an index on it turns that
        # update from HOT into a new entry in every index. Things are looked up by address
        # through their lease (things.repository._showing; migration 0013).
    )

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = account_column(indexed=False)
    iccid: Mapped[str] = mapped_column(String(20), unique=True)
    imsi: Mapped[str] = mapped_column(String(15), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(12), default="PROVISIONED")
    things_group_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("things_groups.id"), index=True
    )
    service_data: Mapped[bool] = mapped_column(default=True)
    service_sms: Mapped[bool] = mapped_column(default=True)
    imei: Mapped[str | None] = mapped_column(String(15), nullable=True)
    imei_lock: Mapped[bool] = mapped_column(default=False)
    ip_address: Mapped[str | None] = mapped_column(String(15), nullable=True)
    ip_locked: Mapped[bool] = mapped_column(default=False)
    connection_status: Mapped[str] = mapped_column(String(10), default="NEVER")
    connection_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    connection_rat: Mapped[str | None] = mapped_column(String(8), nullable=True)
    connection_country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    connection_operator: Mapped[str | None] = mapped_column(String(6), nullable=True)
    connection_session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ThingTag(Base):
    __tablename__ = "thing_tags"
    __table_args__ = (Index("ix_thing_tags_account_id_tag", "account_id", "tag"),)

    thing_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("things.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("accounts.id", ondelete="CASCADE"))


class ThingStateChange(Base):
    """Every state change with its time and actor: billing reads this history."""

    __tablename__ = "thing_state_changes"
    __table_args__ = (
        Index("ix_thing_state_changes_thing_id_changed_at", "thing_id", "changed_at"),
        # A cycle's fees: one account's histories in Thing and time order (the id breaks ties
        # between changes at the same instant), read from the index alone.
        Index("ix_thing_state_changes_account_id_thing_id_changed_at_id", "account_id",
              "thing_id", "changed_at", "id", postgresql_include=["to_state"]),
    )

    id: Mapped[str] = id_column()
    # No foreign keys: the platform writes these rows only with the Thing's own account and id,
    # in the statement that changes the Thing, and neither accounts nor Things are ever
    # deleted; the checks were a third of a bulk state change (migration 0011).
    account_id: Mapped[str] = mapped_column(IdColumn)
    thing_id: Mapped[str] = mapped_column(IdColumn)
    from_state: Mapped[str | None] = mapped_column(String(12), nullable=True)
    to_state: Mapped[str] = mapped_column(String(12))
    changed_at: Mapped[datetime] = created_column()
    actor_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="api")
