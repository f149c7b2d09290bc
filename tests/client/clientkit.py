"""Helpers shared by the client and customer CLI tests."""

from __future__ import annotations

import secrets
from typing import Any

import httpx


def credential(tenant: Any, role: str) -> tuple[str, str, str]:
    """A new user of `role` in the tenant's account: (user id, client id, client secret)."""
    user = tenant.admin.post("/v1/users", json={
        "email": f"{role}-{secrets.token_hex(6)}@example.com", "name": role, "role": role})
    assert user.status_code == 201, user.text
    made = tenant.admin.post(f"/v1/users/{user.json()['id']}/credentials", json={})
    assert made.status_code == 201, made.text
    return user.json()["id"], made.json()["client_id"], made.json()["client_secret"]


class Recorder:
    """An httpx.Client whose hooks note every request and answer (the transport is real)."""

    def __init__(self, ssl_context) -> None:  # type: ignore[no-untyped-def]
        self.requests: list[httpx.Request] = []
        self.statuses: list[tuple[str, str, int]] = []
        self.http = httpx.Client(verify=ssl_context, event_hooks={
            "request": [self.requests.append],
            "response": [lambda r: self.statuses.append(
                (r.request.method, r.request.url.path, r.status_code))]})

    def to(self, path: str, method: str | None = None) -> list[httpx.Request]:
        return [r for r in self.requests
                if r.url.path == path and (method is None or r.method == method)]
