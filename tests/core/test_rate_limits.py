"""Token-bucket rate limits: headers on every /v1 response, 429, and buckets shared through Redis
by several server processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

REDIS_URL = "redis://127.0.0.1:6379/15"
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


def test_every_v1_response_carries_ratelimit_headers(shared_tenant, clients):
    admin = shared_tenant.admin
    group_id = admin.get("/v1/things-groups").json()["items"][0]["id"]
    anonymous = clients(shared_tenant.base_url)
    responses = {
        "200": admin.get("/v1/things"),
        "201": admin.post("/v1/users/" + admin.get("/v1/me").json()["user"]["id"]
                          + "/credentials", json={}),
        "302": admin.get("/v1/things/lookup", params={"iccid": "8900000000000000000"},
                         follow_redirects=False),
        "400": admin.get("/v1/things", params={"limit": "0"}),
        "401": anonymous.get("/v1/things"),
        "404 id": admin.get("/v1/things-groups/grp_nope"),
        "404 route": admin.get("/v1/nothing-here"),
        "405": admin.put(f"/v1/things-groups/{group_id}", json={}),
        "412": admin.patch(f"/v1/things-groups/{group_id}", json={"name": "x"},
                           headers={"If-Match": '"stale"'}),
        "token": anonymous.post("/v1/oauth2/token", data={"grant_type": "client_credentials"},
                                auth=(shared_tenant.client_id, shared_tenant.client_secret)),
    }
    for name, response in responses.items():
        assert response.status_code < 500, (name, response.text)
        for header in RATE_HEADERS:
            assert int(response.headers[header]) >= 0, (name, header, response.headers)
    assert responses["200"].headers["ratelimit-limit"] == str(
        shared_tenant.backend.settings.rate_limit_burst)


def test_remaining_counts_down_then_429(tenant, build_app, serve, clients):
    base_url = serve(build_app(rate_limit_per_second=0.5, rate_limit_burst=3))
    client = clients(base_url, token_of(tenant.admin))
    responses = [client.get("/v1/things-groups") for _ in range(5)]
    # A refill of 0.5 token/s cannot restore a whole token between back-to-back requests.
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0", "0"]
    assert {r.headers["ratelimit-limit"] for r in responses} == {"3"}
    assert 1 <= int(responses[2].headers["ratelimit-reset"]) <= 6
    refused = responses[3]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert refused.headers["x-request-id"]


def test_buckets_are_per_credential(tenant, build_app, serve, clients):
    base_url = serve(build_app(rate_limit_per_second=0.5, rate_limit_burst=2))
    first = clients(base_url, token_of(tenant.admin))
    second = clients(base_url, token_of(tenant.client("viewer")))
    assert [first.get("/v1/me").status_code for _ in range(3)] == [200, 200, 429]
    assert [second.get("/v1/me").status_code for _ in range(3)] == [200, 200, 429]


def test_a_throttled_write_does_nothing(tenant, build_app, serve, clients):
    base_url = serve(build_app(rate_limit_per_second=0.5, rate_limit_burst=1))
    client = clients(base_url, token_of(tenant.admin))
    assert client.get("/v1/me").status_code == 200
    refused = client.post("/v1/things-groups", json={"name": "throttled"},
                          headers={"Idempotency-Key": "throttled"})
    assert refused.status_code == 429
    names = [g["name"] for g in tenant.admin.get("/v1/things-groups").json()["items"]]
    assert "throttled" not in names
    # Throttling is no outcome of the key: on the unthrottled server it does the work.
    retried = tenant.admin.post("/v1/things-groups", json={"name": "throttled"},
                                headers={"Idempotency-Key": "throttled"})
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


# --- several processes, one bucket -----------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # Redis is part of the test environment (.ci/run starts it)
    yield client
    client.close()


def _start_server(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "simplane.app:app_from_environment",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)


def _wait_ready(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server on {base_url} did not start: {log.read_text()}")


@pytest.fixture
def two_processes(backend, tmp_path: Path, redis_db) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLANE_")}
    env.update({
        "SIMPLANE_DATABASE_URL": backend.url,
        "SIMPLANE_SECRET_KEY": backend.settings.secret_key or "",
        "SIMPLANE_DATA_DIR": str(tmp_path),
        "SIMPLANE_REDIS_URL": REDIS_URL,
        "SIMPLANE_RATE_LIMIT_PER_SECOND": "0.5",
        "SIMPLANE_RATE_LIMIT_BURST": "6",
        "SIMPLANE_LOG_LEVEL": "WARNING",
    })
    processes = []
    try:
        for n in range(2):
            port = _free_port()
            log = tmp_path / f"server-{n}.log"
            processes.append((f"http://127.0.0.1:{port}", _start_server(port, env, log), log))
        for base_url, process, log in processes:
            _wait_ready(base_url, process, log)
        yield [base_url for base_url, _, _ in processes]
    finally:
        for _, process, _ in processes:
            process.terminate()
        for _, process, _ in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_processes_share_one_bucket_through_redis(tenant, two_processes, clients, redis_db):
    # A fresh credential: its bucket key is new to Redis, so earlier runs cannot interfere.
    viewer = tenant.client("viewer")
    client_id = viewer.get("/v1/me").json()["client_id"]
    bucket = f"simplane:ratelimit:cred:{client_id}"
    try:
        servers = [clients(base_url, token_of(viewer)) for base_url in two_processes]
        started = time.monotonic()
        outcomes = [(n % 2, servers[n % 2].get("/v1/things")) for n in range(16)]
        elapsed = time.monotonic() - started

        statuses = [r.status_code for _, r in outcomes]
        assert set(statuses) <= {200, 429}, [r.text for _, r in outcomes]
        ok = statuses.count(200)
        # Separate buckets would allow 6 per process, 12 in all; one shared bucket allows 6
        # plus what 0.5 token/s refilled meanwhile.
        assert 6 <= ok <= 6 + int(elapsed * 0.5), (statuses, elapsed)
        assert statuses[:6] == [200] * 6
        refused_by = {server for server, r in outcomes if r.status_code == 429}
        assert refused_by == {0, 1}
        for _, response in outcomes:
            assert response.headers["ratelimit-limit"] == "6"
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["code"] == "rate_limited"
        # Alternating servers count down one bucket: each answer is below the other's last.
        remaining = [int(r.headers["ratelimit-remaining"]) for _, r in outcomes[:6]]
        assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == 6, \
            remaining
        assert redis_db.exists(bucket)
    finally:
        redis_db.delete(bucket)


def test_an_unreachable_redis_lets_requests_through(build_app, serve, clients, tenant) -> None:  # type: ignore[no-untyped-def]
    # Nothing listens on port 9 (discard): every bucket lookup fails, and the API still serves.
    base_url = serve(build_app(redis_url="redis://127.0.0.1:9/0"))
    client = clients(base_url)
    client.headers["Authorization"] = tenant.admin.headers["Authorization"]
    answer = client.get("/v1/things")
    assert answer.status_code == 200, answer.text
    assert "ratelimit-limit" not in answer.headers
