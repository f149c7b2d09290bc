"""Webhook servers (delivery workers on) with the module's retry settings, on a database of the
module's own: deliveries left by another module's receivers must not meet these settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from livekit import make_tenant, private_backend, root_conftest, start_server


@pytest.fixture(scope="module")
def hooks_backend(pytestconfig: pytest.Config, backend: Any,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from private_backend(pytestconfig, backend.name,
                               tmp_path_factory.mktemp(f"hooks-{backend.name}"))


@dataclass
class Live:
    """The test's server; `restart()` stops it and serves the same port again."""

    config: pytest.Config
    backend: Any
    settings: dict[str, Any]
    port: int
    thread: Any = None
    tenants: list[Any] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Live:
        self.thread = start_server(self.config, self.backend, self.port, **self.settings)
        return self

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.__exit__(None, None, None)
            self.thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def tenant(self) -> Any:
        self.tenants.append(make_tenant(self.config, self.backend, self.base_url))
        return self.tenants[-1]


@pytest.fixture(scope="module")
def live(pytestconfig: pytest.Config, hooks_backend: Any,
         request: pytest.FixtureRequest) -> Iterator[Live]:
    """The module's server, configured by its SERVER_SETTINGS."""
    settings = getattr(request.module, "SERVER_SETTINGS", {})
    running = Live(pytestconfig, hooks_backend, settings, root_conftest(pytestconfig).free_port())
    running.start()
    yield running
    running.stop()
    for tenant in running.tenants:
        tenant.close()


@pytest.fixture
def tenant(live: Live) -> Any:
    return live.tenant()


@pytest.fixture
def other_tenant(live: Live) -> Any:
    return live.tenant()


@pytest.fixture(scope="module")
def shared_tenant(live: Live) -> Any:
    """One account for a module's many refused cases (an account costs ~0.4 s)."""
    return live.tenant()
