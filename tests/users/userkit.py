"""Helpers for the users, credentials and /v1/me tests."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

TOKEN = "/v1/oauth2/token"
ROLES = ("admin", "manager", "viewer", "billing")


@dataclass
class Member:
    """A user of a tenant with one credential and a client holding a token of it."""

    user: dict
    client_id: str
    client_secret: str
    client: httpx.Client

    @property
    def id(self) -> str:
        return self.user["id"]


def email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(6)}@example.com"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


def request_token(base_url: str, client_id: str, client_secret: str) -> httpx.Response:
    return httpx.post(f"{base_url}{TOKEN}", data={"grant_type": "client_credentials"},
                      auth=(client_id, client_secret))


def add_member(tenant, role: str, **fields: Any) -> Member:  # type: ignore[no-untyped-def]
    user = tenant.admin.post("/v1/users", json={"email": email(role), "name": role, "role": role,
                                                **fields})
    assert user.status_code == 201, user.text
    credential = tenant.admin.post(f"/v1/users/{user.json()['id']}/credentials", json={})
    assert credential.status_code == 201, credential.text
    body = credential.json()
    return Member(user.json(), body["client_id"], body["client_secret"],
                  tenant.connect(body["client_id"], body["client_secret"]))


def keys(value: Any) -> set[str]:
    """Every key of every object in a JSON document."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


def at_once(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls in threads released together; their responses in call order."""
    barrier = threading.Barrier(len(calls))
    results: list[httpx.Response | BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]
