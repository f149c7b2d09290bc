"""Tokens (refresh before expiry, one renewal on a 401) and bounded retries of 429s."""

from __future__ import annotations

import socket

import pytest
from clientkit import Recorder, credential

from simplane.client import (
    APIConnectionError,
    AuthenticationError,
    Client,
    RateLimitedError,
)


@pytest.fixture
def recorder(ssl_context):  # type: ignore[no-untyped-def]
    made = Recorder(ssl_context)
    yield made
    made.http.close()


def test_token_refreshed_shortly_before_expiry(tenant, connect, recorder):
    now = [1000.0]
    client = connect(tenant, http_client=recorder.http, clock=lambda: now[0],
                     token_refresh_margin=60)
    client.me()
    first = recorder.requests[-1].headers["authorization"]
    now[0] += 3600 - 61  # the server's tokens live 3600 s: still 61 s to go
    client.me()
    assert len(recorder.to("/v1/oauth2/token")) == 1
    assert recorder.requests[-1].headers["authorization"] == first
    now[0] += 2  # inside the margin: a new token before the request, not after a 401
    client.me()
    assert len(recorder.to("/v1/oauth2/token")) == 2
    assert recorder.requests[-1].headers["authorization"] != first
    assert [s for s in recorder.statuses if s[2] == 401] == []


def test_token_renewed_once_after_a_401(tenant, server, recorder):
    user_id, client_id, secret = credential(tenant, "manager")
    client = Client(server.base_url, client_id, secret, http_client=recorder.http)
    assert client.me().role == "manager"
    # Disabling a user kills its tokens for good, even once it is enabled again.
    for status in ("DISABLED", "ACTIVE"):
        assert tenant.admin.patch(f"/v1/users/{user_id}", json={"status": status}).status_code == 200
    assert client.me().role == "manager"
    assert [s[2] for s in recorder.statuses if s[1] == "/v1/me"] == [200, 401, 200]
    assert len(recorder.to("/v1/oauth2/token")) == 2

    # A deleted credential cannot get a new token: one renewal attempt, then the error.
    assert tenant.admin.delete(f"/v1/users/{user_id}/credentials/{client_id}").status_code == 204
    with pytest.raises(AuthenticationError) as caught:
        client.me()
    assert caught.value.code == "invalid_client"
    assert [s[2] for s in recorder.statuses[-2:]] == [401, 401]


def test_429_is_retried_after_retry_after(tenant, connect, limited_server):
    retries = []
    client = connect(tenant, base_url=limited_server, on_retry=retries.append)
    first = client.things.list().first_page()
    second = client.things.list().first_page()  # the bucket is empty: 429, wait, again
    assert first.items == second.items == []
    assert [(r.status, r.attempt) for r in retries] == [(429, 1)] and retries[0].wait >= 1


def test_post_retried_only_with_its_idempotency_key(tenant, connect, limited_server, recorder):
    client = connect(tenant, base_url=limited_server, http_client=recorder.http)
    client.groups.list().first_page()
    group = client.groups.create("after a 429")
    posts = recorder.to("/v1/things-groups", "POST")
    assert [s[2] for s in recorder.statuses if s[0] == "POST" and s[1] == "/v1/things-groups"] == [429, 201]
    keys = {p.headers.get("idempotency-key") for p in posts}
    assert len(keys) == 1 and None not in keys  # one logical call, one key, reused

    # Another credential: a bucket of its own, emptied by one request.
    bare = connect(tenant, "manager", base_url=limited_server, http_client=recorder.http,
                   auto_idempotency_keys=False)
    bare.groups.list().first_page()
    with pytest.raises(RateLimitedError):
        bare.groups.create("never retried blindly")
    assert len(recorder.to("/v1/things-groups", "POST")) == 3
    assert "idempotency-key" not in recorder.to("/v1/things-groups", "POST")[-1].headers
    names = {g["name"] for g in tenant.admin.get("/v1/things-groups").json()["items"]}
    assert group.name in names and "never retried blindly" not in names


def test_failed_connections_are_retried_a_bounded_number_of_times(tenant):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    retries = []
    with (Client(f"http://127.0.0.1:{port}", tenant.client_id, tenant.client_secret,
                 max_retries=2, on_retry=retries.append) as client,
          pytest.raises(APIConnectionError)):
        client.me()
    assert [(r.status, r.attempt) for r in retries] == [(None, 1), (None, 2)]
