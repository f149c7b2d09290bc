"""Settings from the environment (`SIMPLANE_*`); a bad value stops start-up with one clear line."""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """Raised with a single human line naming the bad setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIMPLANE_", extra="ignore")

    environment: str = Field("development", pattern="^(development|production)$")
    database_url: str = "sqlite:///./simplane-data/simplane.db"
    data_dir: Path = Path("./simplane-data")
    secret_key: str | None = None
    redis_url: str | None = None
    apn: str = Field("simplane.m2m", min_length=1, max_length=100)
    account_ip_space: str = "10.64.0.0/10"
    account_allocation_prefix: int = Field(16, ge=8, le=28)
    default_pool_prefix: int = Field(20, ge=8, le=30)
    nat_public_range: str = "198.51.100.0/24"
    vpn_gateway_ip: str = "203.0.113.1"
    radius_bind: str = "127.0.0.1"
    radius_auth_port: int = Field(1812, ge=0, le=65535)
    radius_acct_port: int = Field(1813, ge=0, le=65535)
    radius_clients: str = "127.0.0.0/8=testing123"
    radius_require_message_authenticator: bool = False
    radius_interim_interval: int = Field(300, ge=60, le=86400)
    radius_disconnect_port: int = Field(3799, ge=1, le=65535)
    radius_disconnect_timeout: float = Field(2.0, gt=0, le=30)
    radius_disconnect_retries: int = Field(3, ge=1, le=10)
    radius_enabled: bool = True
    billing_grace_days: int = Field(3, ge=0, le=60)
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    webhook_retry_base_seconds: float = Field(10.0, gt=0, le=3600)
    webhook_retry_max_age_seconds: int = Field(86400, ge=1, le=7 * 86400)
    bulk_stale_seconds: float = Field(60.0, gt=0, le=3600)
    # Things per transaction of a bulk ACTIVATE/SUSPEND/RETIRE; unset: 20,000 on PostgreSQL,
    # 2,000 on SQLite (bulk.service.STATE_BATCH_SIZE).
    bulk_batch_size: int | None = Field(None, ge=1, le=200_000)
    # Batches of a bulk ACTIVATE/SUSPEND/RETIRE that one `serve` process runs at once on
    # PostgreSQL, each on a database connection (and core) of its own; SQLite runs one.
    bulk_parallel_batches: int = Field(2, ge=1, le=16)
    # Requests of one `serve` process that hold a database session at once (`core.deps.
    # RequestSlots`); the others wait their turn on the event loop.
    request_concurrency: int = Field(2, ge=1, le=100)
    rate_limit_per_second: float = Field(100.0, gt=0)
    rate_limit_burst: int = Field(200, ge=1)
    token_rate_limit_per_minute: int = Field(30, ge=1)
    token_ttl_seconds: int = Field(3600, ge=60, le=86400)
    idempotency_ttl_seconds: int = Field(86400, ge=60)
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("account_ip_space", "nat_public_range")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            return str(ipaddress.IPv4Network(value, strict=True))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 network in CIDR form ({exc})") from None

    @field_validator("radius_clients")
    @classmethod
    def _radius_clients(cls, value: str) -> str:
        from ..radius.clients import parse_clients

        parse_clients(value)
        return value

    @field_validator("vpn_gateway_ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address") from None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(f"{value!r} is neither a sqlite:// nor a postgresql:// URL")
        if value.startswith("postgresql://"):
            # psycopg 3 is the one driver we ship; plain postgresql:// would pick psycopg2.
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    def resolved_secret_key(self) -> str:
        """The signing key; in development it is generated once into the data folder."""
        if self.secret_key:
            return self.secret_key
        if self.environment == "production":
            raise ConfigError("SIMPLANE_SECRET_KEY is required when SIMPLANE_ENVIRONMENT=production")
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Private from the first byte, and published with link(), which never replaces:
            # processes starting together all end up reading the one key that won.
            temporary = path.with_name(f".secret_key.{os.getpid()}.tmp")
            with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                           "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
        return path.read_text().strip()


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "SIMPLANE_" + str(first["loc"][0]).upper() if first["loc"] else "SIMPLANE_*"
        raise ConfigError(f"invalid setting {name}: {first['msg']}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
