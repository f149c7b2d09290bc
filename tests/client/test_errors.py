"""Every exception class, each raised by a real answer of the real app."""

from __future__ import annotations

import secrets
import socket

import pytest

from simplane.app import create_app
from simplane.client import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    Client,
    EtagMismatchError,
    IdempotencyKeyReusedError,
    InUseError,
    InvalidStateTransitionError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    SimplaneError,
    ValidationError,
)
from simplane.core.db import Database


def test_validation_error_names_every_bad_field(tenant, connect):
    client = connect(tenant)
    thing = tenant.things(1)[0]
    with pytest.raises(ValidationError) as caught:
        client.things.update(thing["id"], state="BROKEN")
    error = caught.value
    assert (error.status, error.code) == (400, "validation_error")
    assert [e.field for e in error.errors] == ["state"] and "BROKEN" in error.detail
    assert error.request_id and str(error).startswith("400 validation_error: ")
    with pytest.raises(ValidationError) as caught:
        client.things.list(limit=0).first_page()
    assert caught.value.errors[0].field == "limit"


def test_authentication_error_from_the_token_endpoint(tenant, server, ssl_context):
    with (Client(server.base_url, tenant.client_id, "not-the-secret", verify=ssl_context) as client,
          pytest.raises(AuthenticationError) as caught):
        client.things.list().first_page()
    assert (caught.value.status, caught.value.code) == (401, "invalid_client")


def test_authentication_error_for_a_token_the_server_refuses(tenant, server, ssl_context):
    with (Client(server.base_url, access_token="not.a-token", verify=ssl_context) as client,
          pytest.raises(AuthenticationError) as caught):
        client.me()
    assert caught.value.status == 401 and caught.value.headers["www-authenticate"].startswith("Bearer")


def test_permission_denied_for_a_viewer_write(tenant, connect):
    viewer = connect(tenant, "viewer")
    thing = tenant.things(1)[0]
    with pytest.raises(PermissionDeniedError) as caught:
        viewer.things.activate(thing["id"])
    assert caught.value.status == 403


def test_not_found_for_unknown_ids_and_lookups(tenant, other_tenant, connect):
    client = connect(tenant)
    theirs = other_tenant.things(1)[0]
    for call in (lambda: client.things.get(theirs["id"]),
                 lambda: client.things.lookup(iccid=theirs["iccid"]),
                 lambda: client.groups.get("grp_nope")):
        with pytest.raises(NotFoundError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (404, "not_found")


def test_method_not_allowed(tenant, connect):
    with pytest.raises(MethodNotAllowedError) as caught:
        connect(tenant).request("PUT", "/v1/things")
    assert caught.value.status == 405 and "GET" in caught.value.headers["allow"]


def test_precondition_failures_by_code(tenant, connect):
    client = connect(tenant)
    thing = client.things.get(tenant.things(1)[0]["id"])

    with pytest.raises(EtagMismatchError) as stale:
        client.things.update(thing.id, name="x", if_match='"stale"')
    assert (stale.value.status, stale.value.code) == (412, "etag_mismatch")

    client.things.retire(thing.id)
    with pytest.raises(InvalidStateTransitionError) as transition:
        client.things.activate(thing.id)
    assert transition.value.code == "invalid_state_transition" and "RETIRED" in transition.value.detail

    group = client.groups.create("busy")
    client.things.move(tenant.things(1)[0]["id"], group.id)
    with pytest.raises(InUseError):
        client.groups.delete(group.id)

    key = f"k-{secrets.token_hex(8)}"
    client.groups.create("first", idempotency_key=key)
    with pytest.raises(IdempotencyKeyReusedError):
        client.groups.create("second", idempotency_key=key)

    default = next(g for g in client.groups.list() if g.is_default)
    with pytest.raises(PreconditionFailedError) as other:
        client.groups.delete(default.id)
    # A code without a class of its own still arrives as a PreconditionFailedError with `.code`.
    assert type(other.value) is PreconditionFailedError and other.value.code == "default_resource"


def test_rate_limited_once_retries_are_exhausted(tenant, connect, limited_server):
    client = connect(tenant, base_url=limited_server, max_retries=0)
    client.things.list().first_page()
    with pytest.raises(RateLimitedError) as caught:
        client.things.list().first_page()
    assert caught.value.status == 429 and caught.value.retry_after is not None
    assert caught.value.retry_after >= 1


def _broken_database(backend) -> Database:  # type: ignore[no-untyped-def]
    if backend.name == "sqlite":
        return Database("sqlite:////nonexistent/simplane/nowhere.db")
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Database(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")


def test_service_unavailable_when_the_database_is_down(tenant, backend, serve, ssl_context):
    database = _broken_database(backend)
    base_url = serve(create_app(backend.settings, database))
    # The server asks for Retry-After: 5; a client bounded to 1 s gives up at once.
    with (Client(base_url, tenant.client_id, tenant.client_secret, verify=ssl_context,
                 max_retry_wait=1) as client,
          pytest.raises(ServiceUnavailableError) as caught):
        client.me()
    assert isinstance(caught.value, ServerError) and caught.value.status == 503
    assert caught.value.code == "service_unavailable" and caught.value.headers["retry-after"] == "5"
    database.dispose()


def test_connection_error_when_nothing_listens(tenant):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", tenant.client_id, tenant.client_secret,
                max_retries=0) as client, pytest.raises(APIConnectionError) as caught:
        client.me()
    assert not isinstance(caught.value, APIError) and isinstance(caught.value, SimplaneError)
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_credentials_never_follow_a_location_to_another_origin(tenant, connect):
    client = connect(tenant)
    with pytest.raises(SimplaneError) as caught:
        client.request("GET", "http://elsewhere.example/v1/things")
    assert "refusing to send credentials" in str(caught.value)
    same = client.request("GET", client.base_url + "/v1/things")
    assert same.status_code == 200
