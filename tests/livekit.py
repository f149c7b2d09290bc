"""Servers with their background workers running, on a database of their own.

The bulk-action and webhook workers of every lifespan-on server poll the whole database, not an
account: a session-wide server of another test directory (started with other settings) would
claim these tests' jobs and deliveries. So these tests get a private database per engine.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import simplane
from simplane.accounts.service import create_account
from simplane.models import Thing
from simplane.things.identifiers import random_iccid, random_imsi
from simplane.things.service import InventoryRejected, SimRow, ship_sims

ROOT_CONFTEST = Path(__file__).resolve().parent / "conftest.py"
SRC = Path(simplane.__file__).resolve().parents[1]


def root_conftest(config: pytest.Config) -> ModuleType:
    # Every conftest.py outside a package is imported as module "conftest": the root one is
    # found through the plugin manager rather than by import.
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == ROOT_CONFTEST:
            return plugin  # type: ignore[no-any-return]
    raise RuntimeError(f"{ROOT_CONFTEST} is not loaded")


def private_backend(config: pytest.Config, engine: str, tmp: Path) -> Iterator[Any]:
    yield from root_conftest(config).make_backend(engine, tmp)


def start_server(config: pytest.Config, backend: Any, port: int | None = None,
                 **settings: object) -> Any:
    """A lifespan-on server (bulk and webhook workers, no RADIUS); stop with .__exit__."""
    root = root_conftest(config)
    from simplane.app import create_app

    configured = backend.settings.model_copy(update={"radius_enabled": False, **settings})
    return root.ServerThread(create_app(configured, backend.database), port or root.free_port(),
                             lifespan="on").__enter__()


def make_tenant(config: pytest.Config, backend: Any, base_url: str) -> Any:
    root = root_conftest(config)
    with backend.database.transaction() as session:
        created = create_account(session, backend.settings, name=f"Live {secrets.token_hex(3)}",
                                 admin_email=f"live-{secrets.token_hex(6)}@example.com")
    return root.Tenant(base_url, backend, created.account.id, created.admin.id,
                       created.client_id, created.client_secret)


def ship(tenant: Any, count: int) -> list[str]:
    """Ship `count` SIMs in one transaction; the new Things' ids in id (creation) order.

    IMSIs have ten random digits: among tens of thousands a repeat is likely enough to retry.
    """
    for _ in range(5):
        iccids, imsis = set(), set()
        while len(iccids) < count:
            iccids.add(random_iccid())
        while len(imsis) < count:
            imsis.add(random_imsi())
        rows = [SimRow(i + 1, iccid, imsi) for i, (iccid, imsi) in enumerate(zip(iccids, imsis))]
        try:
            with tenant.backend.database.transaction() as session:
                ship_sims(session, tenant.account_id, rows)
                wanted, ids = sorted(iccids), []
                for start in range(0, count, 1000):
                    ids += session.scalars(select(Thing.id).where(
                        Thing.account_id == tenant.account_id,
                        Thing.iccid.in_(wanted[start:start + 1000])))
                return sorted(ids)
        except InventoryRejected:
            continue
    raise AssertionError("could not draw distinct SIM identifiers")


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Poll until `predicate` answers something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


def field_names(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


class ServerProcess:
    """`uvicorn --factory simplane.app:app_from_environment` as a real process, to kill -9."""

    def __init__(self, backend: Any, port: int, log: Path, **env: str) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        self.env = {**os.environ, "PYTHONPATH": str(SRC),
                    "SIMPLANE_DATABASE_URL": backend.settings.database_url,
                    "SIMPLANE_SECRET_KEY": backend.settings.resolved_secret_key(),
                    "SIMPLANE_DATA_DIR": str(backend.settings.data_dir),
                    "SIMPLANE_RADIUS_ENABLED": "false",
                    "SIMPLANE_ACCOUNT_IP_SPACE": backend.settings.account_ip_space,
                    "SIMPLANE_ACCOUNT_ALLOCATION_PREFIX": str(backend.settings.account_allocation_prefix),
                    "SIMPLANE_DEFAULT_POOL_PREFIX": str(backend.settings.default_pool_prefix),
                    "SIMPLANE_NAT_PUBLIC_RANGE": backend.settings.nat_public_range,
                    "SIMPLANE_RATE_LIMIT_PER_SECOND": "10000",
                    "SIMPLANE_RATE_LIMIT_BURST": "10000",
                    "SIMPLANE_TOKEN_RATE_LIMIT_PER_MINUTE": "100000",
                    "SIMPLANE_LOG_LEVEL": "WARNING", **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "simplane.app:app_from_environment",
                 "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                env=self.env, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, open transactions are simply cut off."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
