"""Extra app instances for the cross-cutting tests: tight limits, extra routes, broken databases.

The session `server` is tuned so that limits never get in the way; these tests need servers of
their own, built with create_app on the same database and secret (tokens from the session server
are valid on them).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi import FastAPI

from simplane.accounts.service import create_account
from simplane.app import create_app

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _root_conftest(config: pytest.Config) -> ModuleType:
    # Every conftest.py outside a package is imported as module "conftest", so the root one is
    # found through the plugin manager rather than by import.
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == ROOT_CONFTEST:
            return plugin  # type: ignore[no-any-return]
    raise RuntimeError(f"{ROOT_CONFTEST} is not loaded")


@pytest.fixture(scope="module")
def shared_tenant(pytestconfig: pytest.Config, server, backend):  # type: ignore[no-untyped-def]
    """One account for a module's tests that neither change it nor depend on its contents."""
    with backend.database.transaction() as session:
        created = create_account(session, backend.settings, name=f"Core {secrets.token_hex(3)}",
                                 admin_email=f"core-{secrets.token_hex(6)}@example.com")
    tenant = _root_conftest(pytestconfig).Tenant(
        server.base_url, backend, created.account.id, created.admin.id, created.client_id,
        created.client_secret)
    yield tenant
    tenant.close()


@pytest.fixture
def build_app(backend) -> Callable[..., FastAPI]:  # type: ignore[no-untyped-def]
    def build(**overrides: object) -> FastAPI:
        return create_app(backend.settings.model_copy(update=overrides), backend.database)

    return build


@pytest.fixture
def serve(pytestconfig: pytest.Config) -> Iterator[Callable[[FastAPI], str]]:
    """Serve an app on a free loopback port for the test; returns its base URL."""
    root = _root_conftest(pytestconfig)
    with contextlib.ExitStack() as stack:
        def start(app: FastAPI) -> str:
            return stack.enter_context(root.ServerThread(app, root.free_port())).base_url

        yield start


@pytest.fixture
def clients(pytestconfig: pytest.Config) -> Iterator[Callable[..., httpx.Client]]:
    """httpx clients closed after the test."""
    made: list[httpx.Client] = []
    ssl_context = getattr(_root_conftest(pytestconfig), "SSL_CONTEXT", True)

    def make(base_url: str, token: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=base_url, headers=headers, timeout=30,  # type: ignore[arg-type]
                              verify=ssl_context, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()

