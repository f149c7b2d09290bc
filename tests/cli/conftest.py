"""Fixtures for the CLI tests: the command line in-process and as real processes."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from cli_helpers import Process, cli_env, free_udp_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from simplane.accounts.service import create_account
from simplane.app import create_app
from simplane.cli.main import app
from simplane.core.config import Settings

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.fixture
def cli(backend, tmp_path) -> Callable[..., Result]:  # type: ignore[no-untyped-def]
    """Run `simplane ARGS` in-process against the engine's test database."""
    env = cli_env(backend.settings.database_url, tmp_path)

    def run(*args: str, **extra_env: str) -> Result:
        return CliRunner().invoke(app, list(args), env={**env, **extra_env})

    return run


@pytest.fixture
def processes() -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str], log: Path) -> Process:
        started.append(Process(args, env, log))
        return started[-1]

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def empty_database_url(backend, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A database of the engine under test with no schema at all."""
    if backend.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    base = make_url(backend.settings.database_url)
    name = f"simplane_cli_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _root_conftest(config: pytest.Config) -> ModuleType:
    # Every conftest.py outside a package is imported as module "conftest": the root one is
    # found through the plugin manager rather than by import.
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == ROOT_CONFTEST:
            return plugin  # type: ignore[no-any-return]
    raise RuntimeError(f"{ROOT_CONFTEST} is not loaded")


@dataclass
class RadiusServer:
    settings: Settings
    base_url: str

    def emulate_args(self, secret: str = "testing123") -> list[str]:
        """Where `simplane emulate` finds this server (its flags, not the defaults)."""
        return ["--server-host", "127.0.0.1", "--auth-port", str(self.settings.radius_auth_port),
                "--acct-port", str(self.settings.radius_acct_port), "--secret", secret,
                "--disconnect-port", str(self.settings.radius_disconnect_port),
                "--api-url", self.base_url]


@pytest.fixture(scope="module")
def radius_server(pytestconfig: pytest.Config, backend) -> Iterator[RadiusServer]:  # type: ignore[no-untyped-def]
    """API + RADIUS listeners + Disconnect worker on free ports, sending Disconnect-Requests to
    the port the emulator answers on.

    Module-scoped: its background workers (Disconnect, SMSC) serve every account of the shared
    database, so while it runs they would also take other servers' work (and send it here).
    """
    root = _root_conftest(pytestconfig)
    settings = backend.settings.model_copy(update={
        "radius_enabled": True, "radius_bind": "127.0.0.1",
        "radius_auth_port": free_udp_port(), "radius_acct_port": free_udp_port(),
        "radius_clients": "127.0.0.0/8=testing123", "radius_disconnect_port": free_udp_port(),
        "radius_disconnect_timeout": 0.5, "radius_disconnect_retries": 2})
    with root.ServerThread(create_app(settings, backend.database), root.free_port(),
                           lifespan="on") as running:
        yield RadiusServer(settings, running.base_url)


@pytest.fixture
def radius_tenant(pytestconfig: pytest.Config, radius_server, backend) -> Iterator:  # type: ignore[no-untyped-def]
    """An account of its own on the RADIUS-enabled server (the root `Tenant`)."""
    root = _root_conftest(pytestconfig)
    with backend.database.transaction() as session:
        created = create_account(session, backend.settings, name=f"Emu {secrets.token_hex(3)}",
                                 admin_email=f"emu-{secrets.token_hex(6)}@example.com")
    tenant = root.Tenant(radius_server.base_url, backend, created.account.id, created.admin.id,
                         created.client_id, created.client_secret)
    yield tenant
    tenant.close()
