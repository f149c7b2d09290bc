"""Module-wide accounts: most firewall tests work inside a profile of their own, so one account
per module serves them and keeps the number of accounts (each holds an IP allocation) small."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simplane.accounts.service import create_account

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _tenant_class(config: pytest.Config) -> Any:
    # Every conftest.py outside a package is imported as module "conftest", so the root one is
    # found through the plugin manager rather than by import.
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == ROOT_CONFTEST:
            return plugin.Tenant
    raise RuntimeError(f"{ROOT_CONFTEST} is not loaded")


def _open(config: pytest.Config, server, backend) -> Any:  # type: ignore[no-untyped-def]
    with backend.database.transaction() as session:
        created = create_account(session, backend.settings,
                                 name=f"Firewall {secrets.token_hex(3)}",
                                 admin_email=f"admin-{secrets.token_hex(6)}@example.com")
    return _tenant_class(config)(server.base_url, backend, created.account.id, created.admin.id,
                                 created.client_id, created.client_secret)


@pytest.fixture(scope="module")
def account(pytestconfig: pytest.Config, server,  # type: ignore[no-untyped-def]
            backend) -> Iterator[Any]:
    tenant = _open(pytestconfig, server, backend)
    yield tenant
    tenant.close()


@pytest.fixture(scope="module")
def outsider(pytestconfig: pytest.Config, server,  # type: ignore[no-untyped-def]
             backend) -> Iterator[Any]:
    tenant = _open(pytestconfig, server, backend)
    yield tenant
    tenant.close()
