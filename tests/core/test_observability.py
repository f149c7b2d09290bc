"""Request ids, health and readiness probes, Prometheus metrics."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

GENERATED_ID = re.compile(r"^req_[0-9a-f]{24}$")


def test_every_response_carries_a_request_id(shared_tenant, clients):
    admin = shared_tenant.admin
    anonymous = clients(shared_tenant.base_url)
    responses = [
        admin.get("/v1/me"),
        admin.post("/v1/things-groups", json={"name": ""}),
        admin.get("/v1/things-groups/grp_missing"),
        admin.delete("/v1/me"),
        anonymous.get("/v1/me"),
        anonymous.post("/v1/oauth2/token", data={"grant_type": "client_credentials"}),
        anonymous.get("/healthz"),
        anonymous.get("/readyz"),
        anonymous.get("/metrics"),
        anonymous.get("/openapi.json"),
        anonymous.get("/no/such/page"),
    ]
    ids = [r.headers.get("x-request-id", "") for r in responses]
    assert all(GENERATED_ID.match(i) for i in ids), list(zip([r.url.path for r in responses], ids))
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", ["/v1/me", "/v1/things-groups/grp_missing", "/healthz",
                                  "/v1/no-route"])
def test_a_supplied_request_id_is_echoed(shared_tenant, path):
    response = shared_tenant.admin.get(path, headers={"X-Request-Id": "client-chosen-42"})
    assert response.headers["x-request-id"] == "client-chosen-42"


@pytest.mark.parametrize("offered", ["x" * 65, "has space", "tab\there", ""])
def test_an_unusable_request_id_is_replaced(shared_tenant, offered):
    response = shared_tenant.admin.get("/v1/me", headers={"X-Request-Id": offered})
    assert response.status_code == 200
    assert GENERATED_ID.match(response.headers["x-request-id"])


def test_a_non_ascii_request_id_is_replaced(shared_tenant):
    response = shared_tenant.admin.get("/v1/me", headers={"X-Request-Id": b"caf\xe9"})
    assert GENERATED_ID.match(response.headers["x-request-id"])


def test_healthz_and_readyz(shared_tenant):
    healthz = httpx.get(f"{shared_tenant.base_url}/healthz")
    assert healthz.status_code == 200
    assert healthz.json() == {"status": "ok"}
    readyz = httpx.get(f"{shared_tenant.base_url}/readyz")
    assert readyz.status_code == 200
    assert readyz.json() == {"status": "ready"}


def _requests_total(base_url: str) -> dict[tuple[str, str, str], float]:
    response = httpx.get(f"{base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counts = {}
    for family in text_string_to_metric_families(response.text):
        if family.name == "simplane_http_requests":
            for sample in family.samples:
                if sample.name == "simplane_http_requests_total":
                    labels = sample.labels
                    counts[(labels["method"], labels["route"], labels["status"])] = sample.value
    return counts


def test_metrics_count_requests_by_route_template(shared_tenant):
    base_url = shared_tenant.base_url
    text = httpx.get(f"{base_url}/metrics").text
    assert "# TYPE simplane_http_requests_total counter" in text
    assert "simplane_http_request_duration_seconds_bucket" in text

    group_id = shared_tenant.admin.get("/v1/things-groups").json()["items"][0]["id"]
    before = _requests_total(base_url)
    for _ in range(3):
        assert shared_tenant.admin.get(f"/v1/things-groups/{group_id}").status_code == 200
    shared_tenant.admin.get("/v1/things-groups/grp_missing")
    shared_tenant.admin.get(f"/v1/scan/{group_id}")
    after = _requests_total(base_url)

    def delta(key: tuple[str, str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    # Labelled by route template, never the raw path, so ids cannot explode the series count.
    assert delta(("GET", "/v1/things-groups/{group_id}", "200")) == 3
    assert delta(("GET", "/v1/things-groups/{group_id}", "404")) == 1
    assert delta(("GET", "unmatched", "404")) >= 1
    assert not any(group_id in route for _, route, _ in after)
