"""The OAuth 2.0 client-credentials token endpoint and the life of a bearer token."""

from __future__ import annotations

import base64
import json
import secrets
import time

import httpx
import pytest

from simplane.core.security import TokenSigner

TOKEN = "/v1/oauth2/token"
GRANT = {"grant_type": "client_credentials"}


def oauth_error(response: httpx.Response, status: int, error: str) -> None:
    # RFC 6749 §5.2 format, deliberately not problem+json.
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


def unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def new_credential(tenant, role: str = "manager") -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    """A user of `role` with one credential: (user id, client id, client secret)."""
    user = tenant.admin.post("/v1/users", json={
        "email": f"{role}-{secrets.token_hex(6)}@example.com", "role": role})
    assert user.status_code == 201, user.text
    user_id = user.json()["id"]
    credential = tenant.admin.post(f"/v1/users/{user_id}/credentials", json={"name": "ci"})
    assert credential.status_code == 201, credential.text
    return user_id, credential.json()["client_id"], credential.json()["client_secret"]


def signer(tenant) -> TokenSigner:  # type: ignore[no-untyped-def]
    return TokenSigner(tenant.backend.settings.resolved_secret_key())


def test_token_with_http_basic(shared_tenant, clients):
    response = httpx.post(f"{shared_tenant.base_url}{TOKEN}", data=GRANT,
                          auth=(shared_tenant.client_id, shared_tenant.client_secret))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == shared_tenant.backend.settings.token_ttl_seconds == 3600
    assert response.headers["cache-control"] == "no-store"
    me = clients(shared_tenant.base_url, body["access_token"]).get("/v1/me")
    assert me.status_code == 200
    assert me.json()["client_id"] == shared_tenant.client_id


def test_token_with_form_fields(shared_tenant, clients):
    response = httpx.post(f"{shared_tenant.base_url}{TOKEN}", data={
        **GRANT, "client_id": shared_tenant.client_id,
        "client_secret": shared_tenant.client_secret})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert clients(shared_tenant.base_url, token).get("/v1/me").status_code == 200


@pytest.mark.parametrize("how", ["basic", "form"])
def test_wrong_secret_and_unknown_client_look_alike(shared_tenant, how):
    def attempt(client_id: str, secret: str) -> httpx.Response:
        if how == "basic":
            return httpx.post(f"{shared_tenant.base_url}{TOKEN}", data=GRANT,
                              auth=(client_id, secret))
        return httpx.post(f"{shared_tenant.base_url}{TOKEN}",
                          data={**GRANT, "client_id": client_id, "client_secret": secret})

    wrong_secret = attempt(shared_tenant.client_id, shared_tenant.client_secret + "x")
    unknown = attempt("cli_" + secrets.token_hex(12), shared_tenant.client_secret)
    for response in (wrong_secret, unknown):
        oauth_error(response, 401, "invalid_client")
        assert "access_token" not in response.text
    assert wrong_secret.json() == unknown.json()


@pytest.mark.parametrize(("kwargs", "status", "error"), [
    ({"data": {}}, 400, "invalid_request"),
    ({"data": {"grant_type": "password"}}, 400, "unsupported_grant_type"),
    ({"data": {"grant_type": "authorization_code"}}, 400, "unsupported_grant_type"),
    ({"json": {"grant_type": "client_credentials"}}, 400, "invalid_request"),
    ({"data": GRANT, "headers": {"Authorization": "Basic !!not-base64!!"}}, 401,
     "invalid_client"),
    ({"data": GRANT}, 401, "invalid_client"),
])
def test_token_request_errors(shared_tenant, kwargs, status, error):
    oauth_error(httpx.post(f"{shared_tenant.base_url}{TOKEN}", **kwargs), status, error)


def test_nul_in_client_credentials_is_an_unknown_client(shared_tenant):
    for data in ({**GRANT, "client_id": "cli_\x00", "client_secret": "x"},
                 {**GRANT, "client_id": shared_tenant.client_id, "client_secret": "sk_\x00"}):
        oauth_error(httpx.post(f"{shared_tenant.base_url}{TOKEN}", data=data), 401,
                    "invalid_client")
    oauth_error(httpx.post(f"{shared_tenant.base_url}{TOKEN}", data=GRANT,
                           auth=("cli_\x00", "x")), 401, "invalid_client")


def test_expired_token_is_refused(shared_tenant, clients):
    expired = signer(shared_tenant).issue(shared_tenant.client_id, shared_tenant.account_id, -1)
    unauthorized(clients(shared_tenant.base_url, expired).get("/v1/me"))
    fresh = signer(shared_tenant).issue(shared_tenant.client_id, shared_tenant.account_id, 60)
    assert clients(shared_tenant.base_url, fresh).get("/v1/me").status_code == 200


def test_a_token_accepted_before_is_refused_once_it_expires(shared_tenant, clients):
    # The server remembers the tokens it verified: it must still check their expiry each time.
    token = signer(shared_tenant).issue(shared_tenant.client_id, shared_tenant.account_id, 2)
    client = clients(shared_tenant.base_url, token)
    assert client.get("/v1/me").status_code == 200
    body = token.split(".")[0]
    expires_at = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["exp"]
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)
    unauthorized(client.get("/v1/me"))


def test_tampered_token_is_refused(shared_tenant, other_tenant, clients):
    token = shared_tenant.admin.headers["Authorization"].removeprefix("Bearer ")
    body, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    # Same signature, payload pointing at another account: the signature no longer matches.
    payload["a"] = other_tenant.account_id
    moved = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    for forged in (f"{body}.{flipped}", f"{moved}.{signature}", f"{body}.", f".{signature}",
                   f"{body}.{signature}.{signature}"):
        unauthorized(clients(shared_tenant.base_url, forged).get("/v1/me"))


def test_validly_signed_token_for_a_credential_of_another_account(tenant, other_tenant, clients):
    token = signer(tenant).issue(other_tenant.client_id, tenant.account_id, 3600)
    unauthorized(clients(tenant.base_url, token).get("/v1/things"))


def test_deleting_a_credential_revokes_its_tokens_at_once(tenant, clients):
    user_id, client_id, secret = new_credential(tenant)
    client = clients(tenant.base_url, tenant.token(client_id, secret))
    assert client.get("/v1/things").status_code == 200
    deleted = tenant.admin.delete(f"/v1/users/{user_id}/credentials/{client_id}")
    assert deleted.status_code == 204, deleted.text
    unauthorized(client.get("/v1/things"))
    unauthorized(client.post("/v1/things-groups", json={"name": "late"}))
    oauth_error(httpx.post(f"{tenant.base_url}{TOKEN}", data=GRANT, auth=(client_id, secret)),
                401, "invalid_client")


def test_a_revoked_token_is_refused_before_the_query_is_checked(tenant, clients):
    # GET /v1/things looks its caller up in its own thread; a query it refuses must still
    # answer for the caller first, as every route does.
    user_id, client_id, secret = new_credential(tenant)
    client = clients(tenant.base_url, tenant.token(client_id, secret))
    assert client.get("/v1/things", params={"limit": 0}).status_code == 400
    assert tenant.admin.delete(
        f"/v1/users/{user_id}/credentials/{client_id}").status_code == 204
    unauthorized(client.get("/v1/things", params={"limit": 0}))
    unauthorized(client.get("/v1/things", params={"state": "LOST"}))


def test_deleting_a_credential_also_blocks_idempotent_replays(tenant, clients):
    user_id, client_id, secret = new_credential(tenant)
    client = clients(tenant.base_url, tenant.token(client_id, secret))
    key = {"Idempotency-Key": "replay-after-revoke"}
    assert client.post("/v1/things-groups", json={"name": "g"}, headers=key).status_code == 201
    assert tenant.admin.delete(
        f"/v1/users/{user_id}/credentials/{client_id}").status_code == 204
    unauthorized(client.post("/v1/things-groups", json={"name": "g"}, headers=key))


def test_disabling_a_user_revokes_its_tokens_at_once(tenant, clients):
    user_id, client_id, secret = new_credential(tenant)
    client = clients(tenant.base_url, tenant.token(client_id, secret))
    assert client.get("/v1/things").status_code == 200
    patched = tenant.admin.patch(f"/v1/users/{user_id}", json={"status": "DISABLED"})
    assert patched.status_code == 200, patched.text
    unauthorized(client.get("/v1/things"))
    oauth_error(httpx.post(f"{tenant.base_url}{TOKEN}", data=GRANT, auth=(client_id, secret)),
                401, "invalid_client")


def test_deleting_a_user_revokes_its_tokens(tenant, clients):
    user_id, client_id, secret = new_credential(tenant)
    client = clients(tenant.base_url, tenant.token(client_id, secret))
    assert tenant.admin.delete(f"/v1/users/{user_id}").status_code == 204
    unauthorized(client.get("/v1/me"))


def _from(address: str, base_url: str, clients) -> httpx.Client:  # type: ignore[no-untyped-def]
    # The whole of 127.0.0.0/8 is local on Linux: each address is a distinct source.
    return clients(base_url, transport=httpx.HTTPTransport(local_address=address))


def test_token_endpoint_is_limited_per_client_id(tenant, build_app, serve, clients):
    base_url = serve(build_app(token_rate_limit_per_minute=3))
    sources = [_from(f"127.0.0.{n}", base_url, clients) for n in (2, 3, 4, 5)]
    statuses = [c.post(TOKEN, data=GRANT, auth=(tenant.client_id, tenant.client_secret))
                for c in sources]
    # Each source address asked once; the client id's bucket of 3 is what runs dry.
    assert [r.status_code for r in statuses] == [200, 200, 200, 429], [r.text for r in statuses]
    refused = statuses[-1]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    # Another client id from a fresh address is not affected.
    other = _from("127.0.0.6", base_url, clients).post(TOKEN, data=GRANT, auth=(
        "cli_" + secrets.token_hex(12), "sk_guess"))
    assert other.status_code == 401


def test_token_endpoint_is_limited_per_source_address(tenant, build_app, serve, clients):
    base_url = serve(build_app(token_rate_limit_per_minute=3))
    source = _from("127.0.0.7", base_url, clients)
    # Guessing a different client id each time still empties the address's bucket.
    guesses = [source.post(TOKEN, data=GRANT, auth=("cli_" + secrets.token_hex(12), "sk_guess"))
               for _ in range(4)]
    assert [r.status_code for r in guesses] == [401, 401, 401, 429]
    assert int(guesses[-1].headers["retry-after"]) >= 1
    # Even the right secret is refused from that address now, but not from another one.
    right = (tenant.client_id, tenant.client_secret)
    assert source.post(TOKEN, data=GRANT, auth=right).status_code == 429
    assert _from("127.0.0.8", base_url, clients).post(TOKEN, data=GRANT,
                                                      auth=right).status_code == 200
