"""Helpers for the Things, Things Groups and Events tests.

They arrange rows the public API cannot set yet (IP locks, IMEI, a second Network) directly in
the backend's database, and read outcomes over HTTP.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
from sqlalchemy import delete, select, update

from simplane.core.ids import new_id
from simplane.models import IpLease, IpPool, IpProfile, Network, Thing, ThingsGroup, utcnow

# How to reach each state from PROVISIONED through allowed transitions only.
PATH_TO = {
    "PROVISIONED": [],
    "ACTIVE": ["ACTIVE"],
    "SUSPENDED": ["ACTIVE", "SUSPENDED"],
    "RETIRED": ["RETIRED"],
}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


def set_thing(tenant, thing_id: str, **values: Any) -> None:  # type: ignore[no-untyped-def]
    """Write columns the public API cannot set yet (IP locks, IMEI, connection). An address
    comes with the lease that holds it on the Thing's Network, as the platform keeps them (a
    Thing is found by address through its lease)."""
    with tenant.backend.database.transaction() as session:
        changed = session.execute(update(Thing).where(Thing.id == thing_id).values(**values))
        assert changed.rowcount == 1
        if values.get("ip_address") is not None:
            _lease(session, thing_id, values["ip_address"])


def _lease(session, thing_id: str, address: str) -> None:  # type: ignore[no-untyped-def]
    thing = session.get(Thing, thing_id)
    network_id = session.scalar(select(ThingsGroup.network_id).where(
        ThingsGroup.id == thing.things_group_id))
    pool_id = session.scalar(select(IpPool.id).where(IpPool.network_id == network_id).limit(1))
    session.execute(delete(IpLease).where(IpLease.network_id == network_id,
                                          IpLease.thing_id == thing_id))
    now = utcnow()
    session.add(IpLease(id=new_id("lease"), account_id=thing.account_id, network_id=network_id,
                        pool_id=pool_id, thing_id=thing_id,
                        address=int(ipaddress.IPv4Address(address)),
                        kind="LOCKED" if thing.ip_locked else "DYNAMIC", expires_at=None,
                        created_at=now, updated_at=now))


def add_network(tenant, name: str = "Second network") -> str:  # type: ignore[no-untyped-def]
    """A second Network for the account (the networks API comes in a later issue)."""
    network_id = new_id("network")
    with tenant.backend.database.transaction() as session:
        session.add(Network(id=network_id, account_id=tenant.account_id, name=name))
    return network_id


def bring_to(client: httpx.Client, thing_id: str, state: str) -> dict[str, Any]:
    body = client.get(f"/v1/things/{thing_id}").json()
    for step in PATH_TO[state]:
        response = client.patch(f"/v1/things/{thing_id}", json={"state": step})
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["state"] == state
    return body


def events_of(client: httpx.Client, thing_id: str, event_type: str | None = None) -> list[dict]:
    params = {"thing_id": thing_id, "limit": 1000}
    if event_type:
        params["type"] = event_type
    response = client.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def history_of(client: httpx.Client, thing_id: str) -> list[dict]:
    response = client.get(f"/v1/things/{thing_id}/state-history", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def snapshot(client: httpx.Client, thing_id: str) -> tuple[dict, str]:
    response = client.get(f"/v1/things/{thing_id}")
    assert response.status_code == 200, response.text
    return response.json(), response.headers["etag"]


def group_counts(client: httpx.Client) -> dict[str, int]:
    response = client.get("/v1/things-groups", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {g["id"]: g["thing_count"] for g in response.json()["items"]}



def add_ip_profile(tenant, name: str = "Second profile") -> str:  # type: ignore[no-untyped-def]
    """A second IP Profile for the account (the IP Profiles API comes in a later issue)."""
    profile_id = new_id("ip_profile")
    with tenant.backend.database.transaction() as session:
        session.add(IpProfile(id=profile_id, account_id=tenant.account_id, name=name))
    return profile_id


def default_group(client: httpx.Client) -> dict[str, Any]:
    groups = client.get("/v1/things-groups", params={"limit": 1000}).json()["items"]
    (default,) = [g for g in groups if g["is_default"]]
    return default


def each(cases: list[tuple], check) -> None:  # type: ignore[no-untyped-def]
    """Run `check(*case)` for every case on one tenant and report every failing case at once.

    Validation cases change nothing, so they share one account instead of paying for a new one
    each (account setup is most of a test's cost)."""
    failures = []
    for case in cases:
        try:
            check(*case)
        except AssertionError as exc:
            failures.append(f"{case!r}: {exc}")
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)
