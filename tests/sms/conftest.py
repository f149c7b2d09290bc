"""Servers with their lifespan on (SMSC worker, RADIUS listeners on free ports) beside the
session's plain API server, and a network credential.

Every conftest.py outside a package is imported as module "conftest", so the root one's
ServerThread is found through the plugin manager rather than by import.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from sms_helpers import free_udp_port, network_client

from simplane.accounts.service import create_account
from simplane.app import create_app
from simplane.core.config import Settings
from simplane.users.service import create_network_credential

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _root_conftest(config: pytest.Config) -> ModuleType:
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == ROOT_CONFTEST:
            return plugin  # type: ignore[no-any-return]
    raise RuntimeError(f"{ROOT_CONFTEST} is not loaded")


@dataclass
class Live:
    settings: Settings
    base_url: str
    thread: Any

    def stop(self) -> None:
        self.thread.__exit__(None, None, None)


def _start(config: pytest.Config, backend: Any) -> Live:
    root = _root_conftest(config)
    settings = backend.settings.model_copy(update={
        "radius_enabled": True, "radius_bind": "127.0.0.1",
        "radius_auth_port": free_udp_port(), "radius_acct_port": free_udp_port(),
        "radius_clients": "127.0.0.0/8=testing123", "radius_disconnect_port": free_udp_port(),
        "radius_disconnect_timeout": 0.2, "radius_disconnect_retries": 1})
    thread = root.ServerThread(create_app(settings, backend.database), root.free_port(),
                               lifespan="on").__enter__()
    return Live(settings, thread.base_url, thread)


@pytest.fixture(scope="module")
def live(pytestconfig: pytest.Config, backend: Any) -> Iterator[Live]:
    """One server per engine and module with the SMSC worker and RADIUS running."""
    running = _start(pytestconfig, backend)
    yield running
    running.stop()


@pytest.fixture
def start_live(pytestconfig: pytest.Config, backend: Any) -> Iterator[Callable[[], Live]]:
    """Start servers of the test's own on the same database (a restart is stop + start)."""
    started: list[Live] = []

    def start() -> Live:
        started.append(_start(pytestconfig, backend))
        return started[-1]

    yield start
    for running in started:
        if not running.thread.server.should_exit:
            running.stop()


@pytest.fixture(scope="session")
def network_credential(backend: Any) -> tuple[str, str]:
    with backend.database.transaction() as session:
        return create_network_credential(session, f"smsc-{secrets.token_hex(3)}")


@pytest.fixture
def network(server: Any, network_credential: tuple[str, str]) -> Iterator[httpx.Client]:
    """A client holding a network credential's token, as an SMSC posting MO messages."""
    client = network_client(server.base_url, *network_credential)
    yield client
    client.close()


@pytest.fixture(scope="module")
def shared_tenant(pytestconfig: pytest.Config, server: Any, backend: Any) -> Iterator[Any]:
    """One account for a module's many read-mostly cases: creating an account costs ~0.4 s."""
    root = _root_conftest(pytestconfig)
    with backend.database.transaction() as session:
        created = create_account(session, backend.settings, name="SMS shared",
                                 admin_email=f"sms-{secrets.token_hex(6)}@example.com")
    tenant = root.Tenant(server.base_url, backend, created.account.id, created.admin.id,
                         created.client_id, created.client_secret)
    yield tenant
    tenant.close()
