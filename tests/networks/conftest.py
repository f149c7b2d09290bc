"""Module-wide accounts: most Networks tests work inside a Network of their own, so one account
per module serves them (each account holds an IP allocation, each Network a NAT address)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from netkit import open_tenant


@pytest.fixture(scope="module")
def lab(pytestconfig: pytest.Config, server: Any, backend: Any) -> Iterator[Any]:
    tenant = open_tenant(pytestconfig, server, backend, "Lab")
    yield tenant
    tenant.close()


@pytest.fixture(scope="module")
def stranger(pytestconfig: pytest.Config, server: Any, backend: Any) -> Iterator[Any]:
    tenant = open_tenant(pytestconfig, server, backend, "Stranger")
    yield tenant
    tenant.close()
