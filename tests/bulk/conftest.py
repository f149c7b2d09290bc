"""A bulk-action server (workers on) per engine and module, on a database of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from livekit import make_tenant, private_backend, start_server


@pytest.fixture(scope="session")
def bulk_backend(pytestconfig: pytest.Config, backend: Any,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from private_backend(pytestconfig, backend.name,
                               tmp_path_factory.mktemp(f"bulk-{backend.name}"))


@pytest.fixture(scope="module")
def live(request: pytest.FixtureRequest, pytestconfig: pytest.Config,
         bulk_backend: Any) -> Iterator[Any]:
    # State actions run 500 Things per batch here, so a 5,000-Thing job is seen part-way; a
    # module sets STATE_BATCH = None to run with the engine's own batch size.
    batch = getattr(request.module, "STATE_BATCH", 500)
    running = start_server(pytestconfig, bulk_backend, bulk_batch_size=batch)
    yield running
    running.__exit__(None, None, None)


@pytest.fixture
def make(pytestconfig: pytest.Config, bulk_backend: Any, live: Any) -> Iterator[Callable[[], Any]]:
    tenants: list[Any] = []

    def new() -> Any:
        tenants.append(make_tenant(pytestconfig, bulk_backend, live.base_url))
        return tenants[-1]

    yield new
    for tenant in tenants:
        tenant.close()


@pytest.fixture
def tenant(make: Callable[[], Any]) -> Any:
    return make()


@pytest.fixture
def other_tenant(make: Callable[[], Any]) -> Any:
    return make()


@pytest.fixture(scope="module")
def shared_tenant(pytestconfig: pytest.Config, bulk_backend: Any, live: Any) -> Iterator[Any]:
    """One account for a module's many read-only or refused cases (an account costs ~0.4 s)."""
    tenant = make_tenant(pytestconfig, bulk_backend, live.base_url)
    yield tenant
    tenant.close()
