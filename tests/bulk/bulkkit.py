"""Helpers for the bulk-action tests: submit a job and wait for it, read outcomes."""

from __future__ import annotations

from typing import Any

import httpx
from livekit import wait_for
from sqlalchemy import insert, literal, select

from simplane.models import Thing, ThingTag

FINISHED = ("COMPLETED", "CANCELLED", "FAILED")


def submit(client: httpx.Client, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = client.post("/v1/bulk-actions", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/v1/bulk-actions/{job['id']}"
    return job


def job_of(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/bulk-actions/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def finished(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    return wait_for(lambda: (job := job_of(client, job_id))["status"] in FINISHED and job,
                    timeout=timeout, interval=0.1, what=f"bulk action {job_id} to finish")


def run(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    return finished(client, submit(client, body)["id"])


def items(client: httpx.Client, job_id: str, status: str | None = None,
          limit: int = 1000) -> list[dict[str, Any]]:
    """Every item, following next_cursor page by page."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
    while True:
        response = client.get(f"/v1/bulk-actions/{job_id}/items", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["items"]
        if page["next_cursor"] is None:
            assert "Link" not in response.headers
            return found
        assert 'rel="next"' in response.headers["Link"]
        params["cursor"] = page["next_cursor"]


def thing(client: httpx.Client, thing_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/things/{thing_id}")
    assert response.status_code == 200, response.text
    return response.json()


def tag_all(tenant: Any, tag: str, thing_ids: list[str] | None = None) -> None:
    """Tag Things straight in thing_tags (set-based): the tests are about the bulk side."""
    query = select(Thing.id, literal(tag), Thing.account_id).where(
        Thing.account_id == tenant.account_id)
    if thing_ids is not None:
        query = query.where(Thing.id.in_(thing_ids))
    with tenant.backend.database.transaction() as session:
        session.execute(insert(ThingTag).from_select(["thing_id", "tag", "account_id"], query))


def events(client: httpx.Client, event_type: str, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    query: dict[str, Any] = {"type": event_type, "limit": 1000, **params}
    while True:
        response = client.get("/v1/events", params=query)
        assert response.status_code == 200, response.text
        found += response.json()["items"]
        if response.json()["next_cursor"] is None:
            return found
        query["cursor"] = response.json()["next_cursor"]
