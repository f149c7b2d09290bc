"""A server with its RADIUS listeners and Disconnect worker running, on each engine, and a NAS
that receives its Disconnect-Requests.

The session server of tests/conftest.py runs without lifespan (no RADIUS); these tests get one
RADIUS-enabled server per engine instead, on free ports, and accounts of their own on it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from radius_helpers import DisconnectNas, free_udp_port
from sqlalchemy import select, update

from simplane.accounts.service import create_account
from simplane.app import create_app
from simplane.core.config import Settings
from simplane.models import Thing

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _root_conftest(config: pytest.Config) -> ModuleType:
    # Every conftest.py outside a package is imported as module "conftest", so the root one is
    # found through the plugin manager rather than by import.
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == ROOT_CONFTEST:
            return plugin  # type: ignore[no-any-return]
    raise RuntimeError(f"{ROOT_CONFTEST} is not loaded")


def radius_settings(base: Settings, nas_port: int, **overrides: object) -> Settings:
    return base.model_copy(update={
        "radius_enabled": True, "radius_bind": "127.0.0.1",
        "radius_auth_port": free_udp_port(), "radius_acct_port": free_udp_port(),
        "radius_clients": "127.0.0.0/8=testing123",
        "radius_disconnect_port": nas_port, "radius_disconnect_timeout": 0.2,
        "radius_disconnect_retries": 2, "radius_interim_interval": 600, **overrides})


@dataclass
class Radius:
    settings: Settings
    base_url: str
    nas: DisconnectNas

    @property
    def auth_port(self) -> int:
        return self.settings.radius_auth_port

    @property
    def acct_port(self) -> int:
        return self.settings.radius_acct_port


@pytest.fixture(scope="session")
def nas() -> Iterator[DisconnectNas]:
    listener = DisconnectNas()
    yield listener
    listener.close()


# Module scope: a lifespan server runs background workers (disconnects, SMS, ...) over the
# whole shared database, so it must not outlive the tests that expect it.
@pytest.fixture(scope="module")
def radius(pytestconfig: pytest.Config, backend, nas) -> Iterator[Radius]:  # type: ignore[no-untyped-def]
    root = _root_conftest(pytestconfig)
    settings = radius_settings(backend.settings, nas.port)
    app = create_app(settings, backend.database)
    with root.ServerThread(app, root.free_port(), lifespan="on") as running:
        yield Radius(settings, running.base_url, nas)


@pytest.fixture
def start_radius(pytestconfig: pytest.Config, backend, nas) -> Iterator:  # type: ignore[no-untyped-def]
    """Another RADIUS server on the same database, with settings of the test's choosing."""
    root = _root_conftest(pytestconfig)
    servers = []

    def start(**overrides: object) -> Radius:
        settings = radius_settings(backend.settings, nas.port, **overrides)
        server = root.ServerThread(create_app(settings, backend.database), root.free_port(),
                                   lifespan="on")
        servers.append(server.__enter__())
        return Radius(settings, server.base_url, nas)

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def new_tenant(pytestconfig: pytest.Config, radius: Radius, backend) -> Iterator:  # type: ignore[no-untyped-def]
    root = _root_conftest(pytestconfig)
    # A /22 each with a /24 default pool: room for a few hundred Things and for pools of
    # second Networks, without using up the session database's 10.64.0.0/10.
    settings = backend.settings.model_copy(update={"account_allocation_prefix": 22,
                                                   "default_pool_prefix": 24})
    tenants = []

    def make():  # type: ignore[no-untyped-def]
        with backend.database.transaction() as session:
            created = create_account(
                session, settings, name=f"Radius {secrets.token_hex(3)}",
                admin_email=f"radius-{secrets.token_hex(6)}@example.com")
        tenant = root.Tenant(radius.base_url, backend, created.account.id, created.admin.id,
                             created.client_id, created.client_secret)
        tenants.append(tenant)
        return tenant

    yield make
    for tenant in tenants:
        tenant.close()


@pytest.fixture
def active_things(tenant, backend):  # type: ignore[no-untyped-def]
    """`active_things(n)`: n ACTIVE Things of `tenant` as dicts with at least id and imsi.
    `via_api=False` sets the state in the database: hundreds of PATCHes would dominate the
    concurrency test, and the state machine has tests of its own."""

    def make(count: int, *, via_api: bool = True) -> list[dict]:
        if via_api:
            things = tenant.things(count)
            for thing in things:
                response = tenant.admin.patch(f"/v1/things/{thing['id']}",
                                              json={"state": "ACTIVE"})
                assert response.status_code == 200, response.text
                thing["state"] = "ACTIVE"
            return things
        iccids = tenant.ship(count)
        with backend.database.transaction() as session:
            session.execute(update(Thing).where(Thing.iccid.in_(iccids))
                            .values(state="ACTIVE"))
            rows = session.execute(select(Thing.id, Thing.imsi).where(Thing.iccid.in_(iccids)))
            return [{"id": row.id, "imsi": row.imsi, "state": "ACTIVE"} for row in rows]

    return make
