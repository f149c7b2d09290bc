"""Small helpers shared by the firewall tests (imported by module name; tests/ has no packages)."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM = "application/problem+json"


def make_profile(client: httpx.Client, **body: Any) -> dict:
    body.setdefault("name", "Lockdown")
    response = client.post("/v1/ip-profiles", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def add_rule(client: httpx.Client, profile_id: str, **body: Any) -> dict:
    body.setdefault("chain", "INBOUND")
    body.setdefault("action", "DENY")
    response = client.post(f"/v1/ip-profiles/{profile_id}/rules", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def chain_ids(client: httpx.Client, profile_id: str, chain: str) -> list[str]:
    """Rule ids of one chain in position order, asserting positions are exactly 1..n."""
    response = client.get(f"/v1/ip-profiles/{profile_id}/rules",
                          params={"chain": chain, "limit": 1000})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [r["position"] for r in items] == list(range(1, len(items) + 1))
    assert all(r["chain"] == chain for r in items)
    return [r["id"] for r in items]


def assert_bad_request(response: httpx.Response, field: str, *mentions: str) -> dict:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in [e["field"] for e in body.get("errors", [])], body
    for text in mentions:
        assert text in body["detail"], body
    return body
