"""Fixtures for the client library and customer CLI tests.

The library talks to the real app: the session's live server (blocking `Client`), the app
in-process through httpx.ASGITransport (`AsyncClient`), and apps of their own for what the
session server is tuned never to do (rate limiting, a database that is down).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from clientkit import credential
from fastapi import FastAPI

from simplane.app import create_app
from simplane.bulk.worker import BulkWorker
from simplane.client import AsyncClient, Client

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def root_conftest(config: pytest.Config) -> ModuleType:
    # Every conftest.py outside a package is imported as module "conftest": find the root one
    # through the plugin manager.
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == ROOT_CONFTEST:
            return plugin  # type: ignore[no-any-return]
    raise RuntimeError(f"{ROOT_CONFTEST} is not loaded")


@pytest.fixture
def ssl_context(pytestconfig: pytest.Config) -> Any:
    return getattr(root_conftest(pytestconfig), "SSL_CONTEXT", True)


@pytest.fixture
def connect(server: Any, ssl_context: Any) -> Iterator[Callable[..., Client]]:
    """`connect(tenant, role="admin", base_url=None, **options)`: a blocking Client."""
    made: list[Client] = []

    def make(tenant: Any, role: str = "admin", base_url: str | None = None,
             **options: Any) -> Client:
        if role == "admin":
            client_id, secret = tenant.client_id, tenant.client_secret
        else:
            _, client_id, secret = credential(tenant, role)
        client = Client(base_url or server.base_url, client_id, secret, verify=ssl_context,
                        **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="module")
def asgi_app(backend: Any) -> FastAPI:
    return create_app(backend.settings, backend.database)


@pytest.fixture
def aconnect(asgi_app: FastAPI) -> Callable[..., AsyncClient]:
    """`aconnect(tenant, app=None, **options)`: an AsyncClient on the app in-process."""

    def make(tenant: Any, app: FastAPI | None = None, **options: Any) -> AsyncClient:
        transport = httpx.ASGITransport(app=app or asgi_app)
        return AsyncClient("http://simplane.test", tenant.client_id, tenant.client_secret,
                           transport=transport, **options)

    return make


@pytest.fixture(scope="module")
def limited_app(backend: Any) -> FastAPI:
    """The app with a bucket of one request per second (burst 1) per credential."""
    return create_app(backend.settings.model_copy(update={
        "rate_limit_per_second": 1, "rate_limit_burst": 1}), backend.database)


@pytest.fixture(scope="module")
def limited_server(pytestconfig: pytest.Config, limited_app: FastAPI) -> Iterator[str]:
    root = root_conftest(pytestconfig)
    with root.ServerThread(limited_app, root.free_port()) as running:
        yield running.base_url


@pytest.fixture(scope="module")
def bulk_worker(backend: Any) -> Iterator[BulkWorker]:
    """What a `serve` process runs beside the API: jobs get claimed and run."""
    worker = BulkWorker(backend.database, interval=0.05)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def serve(pytestconfig: pytest.Config) -> Iterator[Callable[[FastAPI], str]]:
    root = root_conftest(pytestconfig)
    with contextlib.ExitStack() as stack:
        def start(app: FastAPI) -> str:
            return stack.enter_context(root.ServerThread(app, root.free_port())).base_url

        yield start
