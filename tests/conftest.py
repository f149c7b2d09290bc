"""Shared fixtures: every test runs against a real server over real HTTP, once per engine.

SQLite always; PostgreSQL too when SIMPLANE_TEST_POSTGRES_URL is set. The schema is built by the
Alembic migrations. Tests isolate themselves by creating their own accounts (every query is
scoped to an account), so one database per engine serves the whole session.
"""

from __future__ import annotations

import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from simplane.accounts.service import Tariff, create_account
from simplane.app import create_app
from simplane.core.config import Settings, load_settings
from simplane.core.db import Database
from simplane.core.migrate import upgrade
from simplane.things.identifiers import random_iccid, random_imsi
from simplane.things.service import SimRow, ship_sims

POSTGRES_URL = os.environ.get("SIMPLANE_TEST_POSTGRES_URL")
# httpx loads the CA bundle for every new client (~50 ms) even for plain http: load it once.
SSL_CONTEXT = ssl.create_default_context()
ENGINES = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Backend:
    """One database, migrated, and the settings that point at it."""

    name: str
    url: str
    database: Database
    settings: Settings


def _postgres_database(tmp: Path) -> Iterator[str]:
    assert POSTGRES_URL
    base = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    name = f"simplane_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_backend(name: str, tmp: Path, **overrides: object) -> Iterator[Backend]:
    if name == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp / 'simplane.db'}"])
    else:
        urls = _postgres_database(tmp)
    url = next(urls)
    settings = load_settings(
        database_url=url, data_dir=str(tmp), secret_key="test-secret-" + name,
        rate_limit_per_second=10_000, rate_limit_burst=10_000,
        token_rate_limit_per_minute=100_000,
        # Every test creates accounts: the default /16 each allows only 64 per database.
        **{"account_ip_space": "10.0.0.0/8", "account_allocation_prefix": 22,
           "default_pool_prefix": 24, "nat_public_range": "198.18.0.0/15", **overrides})
    database = Database(settings.database_url)
    upgrade(database.engine)
    try:
        yield Backend(name, settings.database_url, database, settings)
    finally:
        database.dispose()
        for _ in urls:  # finish the generator: drops the PostgreSQL database
            pass


@pytest.fixture(scope="session", params=ENGINES)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    yield from make_backend(request.param, tmp_path_factory.mktemp(request.param))


class ServerThread:
    """uvicorn serving the app on a free loopback port, in this process."""

    def __init__(self, app, port: int, lifespan: str = "off") -> None:  # type: ignore[no-untyped-def]
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                lifespan=lifespan)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base_url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def server(backend: Backend) -> Iterator[ServerThread]:
    app = create_app(backend.settings, backend.database)
    with ServerThread(app, free_port()) as running:
        yield running


@dataclass
class Tenant:
    """An account of its own, with an admin client; `client(role)` adds a user of that role."""

    base_url: str
    backend: Backend
    account_id: str
    admin_user_id: str
    client_id: str
    client_secret: str
    admin: httpx.Client = field(init=False)
    _clients: list[httpx.Client] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.admin = self.connect(self.client_id, self.client_secret)

    def token(self, client_id: str, client_secret: str) -> str:
        response = httpx.post(f"{self.base_url}/v1/oauth2/token", verify=SSL_CONTEXT,
                              data={"grant_type": "client_credentials"},
                              auth=(client_id, client_secret))
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def connect(self, client_id: str, client_secret: str) -> httpx.Client:
        client = httpx.Client(base_url=self.base_url, timeout=30, verify=SSL_CONTEXT, headers={
            "Authorization": f"Bearer {self.token(client_id, client_secret)}"})
        self._clients.append(client)
        return client

    def client(self, role: str) -> httpx.Client:
        if role == "admin":
            return self.admin
        user = self.admin.post("/v1/users", json={
            "email": f"{role}-{secrets.token_hex(6)}@example.com", "name": role, "role": role})
        assert user.status_code == 201, user.text
        credential = self.admin.post(f"/v1/users/{user.json()['id']}/credentials", json={})
        assert credential.status_code == 201, credential.text
        body = credential.json()
        return self.connect(body["client_id"], body["client_secret"])

    def ship(self, count: int) -> list[str]:
        """Ship `count` SIMs into the account (PROVISIONED, default group); their ICCIDs."""
        rows = [SimRow(i + 1, random_iccid(), random_imsi()) for i in range(count)]
        with self.backend.database.transaction() as session:
            ship_sims(session, self.account_id, rows)
        return [r.iccid for r in rows]

    def things(self, count: int) -> list[dict]:
        """Ship `count` SIMs and return their Thing representations."""
        iccids = self.ship(count)
        found = []
        for iccid in iccids:
            response = self.admin.get("/v1/things", params={"iccid": iccid})
            assert response.status_code == 200, response.text
            found.extend(response.json()["items"])
        return found

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def new_tenant(server: ServerThread, backend: Backend) -> Iterator:
    tenants: list[Tenant] = []

    def make(allocation_prefix: int | None = None, **tariff: object) -> Tenant:
        settings = backend.settings
        if allocation_prefix is not None:  # the product's shape: a /16 with a /20 default pool
            settings = settings.model_copy(update={
                "account_allocation_prefix": allocation_prefix, "default_pool_prefix": 20})
        with backend.database.transaction() as session:
            created = create_account(
                session, settings, name=f"Tenant {secrets.token_hex(3)}",
                admin_email=f"admin-{secrets.token_hex(6)}@example.com",
                tariff=Tariff(**tariff) if tariff else None)  # type: ignore[arg-type]
        tenant = Tenant(server.base_url, backend, created.account.id, created.admin.id,
                        created.client_id, created.client_secret)
        tenants.append(tenant)
        return tenant

    yield make
    for tenant in tenants:
        tenant.close()


@pytest.fixture
def tenant(new_tenant) -> Tenant:  # type: ignore[no-untyped-def]
    return new_tenant()


@pytest.fixture
def other_tenant(new_tenant) -> Tenant:  # type: ignore[no-untyped-def]
    return new_tenant()
