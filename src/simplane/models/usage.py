"""What the network reports: data sessions, usage (raw, per day and per cycle) and IMEI
observations.

None of these tables has a foreign key, and none an index on `account_id` alone (migrations
0010 and 0014). The platform writes their rows only for a Thing it has just read in the same
transaction (RADIUS accounting, the usage import, SMS), with that Thing's account, and accounts
and Things are never deleted (Things are retired). PostgreSQL checked every inserted row
against `things` and `accounts` one by one: two thirds of the cost of adding 2,300,000 days
to `usage_daily`. Every read names the Thing, which the tables' other indexes serve.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, IdColumn, UTCDateTime, created_column, id_column


class DataSession(Base):
    """One PDP context / PDN connection as accounting reports it (Acct-Session-Id per NAS)."""

    __tablename__ = "data_sessions"
    __table_args__ = (
        UniqueConstraint("nas_address", "acct_session_id"),
        Index("ix_data_sessions_thing_id_started_at", "thing_id", "started_at"),
        Index("ix_data_sessions_status_disconnect", "disconnect_status"),
    )

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(IdColumn)
    thing_id: Mapped[str] = mapped_column(IdColumn)
    network_id: Mapped[str | None] = mapped_column(IdColumn, nullable=True)
    nas_address: Mapped[str] = mapped_column(String(45))
    nas_identifier: Mapped[str | None] = mapped_column(String(253), nullable=True)
    acct_session_id: Mapped[str] = mapped_column(String(253))
    framed_ip: Mapped[str | None] = mapped_column(String(15), nullable=True)
    imsi: Mapped[str] = mapped_column(String(15))
    rat: Mapped[str | None] = mapped_column(String(8), nullable=True)
    operator: Mapped[str | None] = mapped_column(String(6), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    status: Mapped[str] = mapped_column(String(8), default="OPEN")
    started_at: Mapped[datetime] = created_column()
    last_update_at: Mapped[datetime] = created_column()
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    bytes_up: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_down: Mapped[int] = mapped_column(BigInteger, default=0)
    terminate_cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    disconnect_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    disconnect_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    disconnect_attempts: Mapped[int] = mapped_column(Integer, default=0)
    disconnect_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UsageRecord(Base):
    """Raw usage: one row per accounting record that carried new octets (partitioned by month
    on PostgreSQL in production deployments)."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_thing_id_recorded_at", "thing_id", "recorded_at"),)

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(IdColumn)
    thing_id: Mapped[str] = mapped_column(IdColumn)
    session_id: Mapped[str | None] = mapped_column(IdColumn, nullable=True)
    recorded_at: Mapped[datetime] = created_column()
    bytes_up: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_down: Mapped[int] = mapped_column(BigInteger, default=0)
    # Reported for a cycle already CLOSED: counted in the open cycle instead.
    late: Mapped[bool] = mapped_column(default=False, server_default=false())


class UsageDaily(Base):
    """The per-Thing, per-UTC-day roll-up that billing and /usage read."""

    __tablename__ = "usage_daily"
    # The counters ride in the key's index (PostgreSQL INCLUDE): a cycle's sums per Thing are an
    # index-only range scan in Thing order, never a heap visit per day (rows lie day by day).
    __table_args__ = (PrimaryKeyConstraint(
        "thing_id", "day", name="pk_usage_daily",
        postgresql_include=["bytes_up", "bytes_down", "sms_mt", "sms_mo"]),)

    thing_id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    account_id: Mapped[str] = mapped_column(IdColumn)
    bytes_up: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_down: Mapped[int] = mapped_column(BigInteger, default=0)
    sms_mt: Mapped[int] = mapped_column(Integer, default=0)
    sms_mo: Mapped[int] = mapped_column(Integer, default=0)


class UsageCycle(Base):
    """The per-Thing, per-billing-cycle roll-up: the sum of the Thing's `usage_daily` rows of
    the cycle, kept by every writer of those rows in the same transaction. A cycle's report
    reads one row per Thing here instead of one per day (30 times fewer rows)."""

    __tablename__ = "usage_cycles"
    # Cycle first: a report reads one contiguous range in Thing order, however many cycles lie
    # before it; the counters ride in the index (PostgreSQL INCLUDE), so no heap visit either.
    __table_args__ = (PrimaryKeyConstraint(
        "period", "thing_id", name="pk_usage_cycles",
        postgresql_include=["bytes_up", "bytes_down", "sms_mt", "sms_mo"]),)

    thing_id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    # The cycle's name (YYYY-MM), as in billing_cycles: the month of the rows' `day`.
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    account_id: Mapped[str] = mapped_column(IdColumn)
    bytes_up: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_down: Mapped[int] = mapped_column(BigInteger, default=0)
    sms_mt: Mapped[int] = mapped_column(Integer, default=0)
    sms_mo: Mapped[int] = mapped_column(Integer, default=0)


class ImeiObservation(Base):
    __tablename__ = "imei_history"
    __table_args__ = (Index("ix_imei_history_thing_id_observed_at", "thing_id", "observed_at"),)

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(IdColumn)
    thing_id: Mapped[str] = mapped_column(IdColumn)
    imei: Mapped[str] = mapped_column(String(15))
    imeisv: Mapped[str | None] = mapped_column(String(16), nullable=True)
    previous_imei: Mapped[str | None] = mapped_column(String(15), nullable=True)
    observed_at: Mapped[datetime] = created_column()
    operator: Mapped[str | None] = mapped_column(String(6), nullable=True)
    rat: Mapped[str | None] = mapped_column(String(8), nullable=True)
