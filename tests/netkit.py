"""Helpers for the Networks tests (tests/networks, tests/things/test_ip_lock.py).

Most tests work inside a Network of their own, carved by prefix length, so one account per
module serves them: every account holds an IP allocation and every Network a public NAT
address, and both are finite per test database.
"""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from simplane.accounts.service import create_account, extend_ip
from simplane.models import IpAllocation, Thing
from simplane.networks import ipam, leases

PROBLEM = "application/problem+json"
ROOT_CONFTEST = Path(__file__).resolve().parent / "conftest.py"


def open_tenant(config: pytest.Config, server: Any, backend: Any, label: str = "Networks") -> Any:
    """A Tenant (the root conftest's class) for fixtures wider than one test."""
    # Every conftest.py outside a package is imported as module "conftest", so the root one is
    # found through the plugin manager rather than by import.
    tenant_class = next(
        plugin.Tenant for plugin in config.pluginmanager.get_plugins()
        if getattr(plugin, "__file__", None)
        and Path(plugin.__file__).resolve() == ROOT_CONFTEST)
    with backend.database.transaction() as session:
        # Networks tests carve many pools: give the module account the product's /16.
        settings = backend.settings.model_copy(update={"account_allocation_prefix": 16,
                                                       "default_pool_prefix": 20})
        made = create_account(session, settings, name=f"{label} {secrets.token_hex(3)}",
                              admin_email=f"admin-{secrets.token_hex(6)}@example.com")
    return tenant_class(server.base_url, backend, made.account.id, made.admin.id,
                        made.client_id, made.client_secret)


def problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status, body
    if code is not None:
        assert body["code"] == code, body
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors") or []}


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"].endswith("/" + body["id"]), response.headers
    assert response.headers.get("etag"), response.headers
    return body


def make_network(client: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"net-{secrets.token_hex(3)}")
    return created(client.post("/v1/networks", json=body))


def add_pool(client: httpx.Client, network_id: str, **body: Any) -> dict[str, Any]:
    return created(client.post(f"/v1/networks/{network_id}/ip-pools", json=body))


def get_pool(client: httpx.Client, network_id: str, pool_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/networks/{network_id}/ip-pools/{pool_id}")
    assert response.status_code == 200, response.text
    return response.json()


def make_group(client: httpx.Client, network_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"group-{secrets.token_hex(3)}")
    return created(client.post("/v1/things-groups", json={"network_id": network_id, **body}))


def network_with_pool(client: httpx.Client, prefix_length: int = 27,
                      **network: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh Network holding one pool carved automatically (so tests sharing an account
    never pick the same block)."""
    net = make_network(client, **network)
    return net, add_pool(client, net["id"], prefix_length=prefix_length)


def things_on(tenant: Any, network_id: str, count: int = 1,
              group: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """`count` new Things in a (new) group on the Network."""
    group = group or make_group(tenant.admin, network_id)
    moved = []
    for thing in tenant.things(count):
        response = tenant.admin.patch(f"/v1/things/{thing['id']}",
                                      json={"things_group_id": group["id"]})
        assert response.status_code == 200, response.text
        moved.append(response.json())
    return moved


def lock(client: httpx.Client, thing_id: str, ip_address: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"locked": True}
    if ip_address is not None:
        body["ip_address"] = ip_address
    return client.patch(f"/v1/things/{thing_id}", json={"ip_lock": body})


def locked(client: httpx.Client, thing_id: str, ip_address: str | None = None) -> str:
    response = lock(client, thing_id, ip_address)
    assert response.status_code == 200, response.text
    assert response.json()["ip_locked"] is True
    return response.json()["ip_address"]


def unlock(client: httpx.Client, thing_id: str) -> httpx.Response:
    return client.patch(f"/v1/things/{thing_id}", json={"ip_lock": {"locked": False}})


def get_thing(client: httpx.Client, thing_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/things/{thing_id}")
    assert response.status_code == 200, response.text
    return response.json()


def events(client: httpx.Client, event_type: str, thing_id: str) -> list[dict[str, Any]]:
    response = client.get("/v1/events", params={"type": event_type, "thing_id": thing_id,
                                                "limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def attach(backend: Any, account_id: str, thing_id: str) -> str | None:
    """What the RADIUS server does on Access-Request: the Thing's address on its Network."""
    with backend.database.transaction() as session:
        thing = session.scalar(select(Thing).where(Thing.account_id == account_id,
                                                   Thing.id == thing_id))
        assert thing is not None
        assignment = leases.allocate_dynamic(session, thing,
                                             leases.network_of_thing(session, thing))
        return None if assignment is None else str(ipaddress.IPv4Address(assignment.address))


def host(cidr: str, index: int) -> str:
    """Address number `index` of a block (0 is the network address, 1 the gateway)."""
    network = ipaddress.IPv4Network(cidr)
    return str(network.network_address + (index if index >= 0 else network.num_addresses + index))


def grant_extension(backend: Any, account_id: str, prefix_length: int) -> str:
    """The operator's `accounts extend-ip` for a block no account holds yet (in 172.16.0.0/12)."""
    with backend.database.transaction() as session:
        granted = [(a.first_address, a.last_address) for a in session.scalars(select(IpAllocation))]
        cidr = ipam.first_free_block([ipam.bounds("172.16.0.0/12")], granted, prefix_length)
        assert cidr is not None, f"no /{prefix_length} of 172.16.0.0/12 is left to grant"
        extend_ip(session, backend.settings, account_id, cidr)
    return cidr
