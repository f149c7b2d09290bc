"""Every status code of api.md §1 (except 202, which bulk actions and SMS produce), each from a
real request."""

from __future__ import annotations

import secrets
import socket

import pytest
from sqlalchemy import text

from simplane.app import create_app
from simplane.core.config import load_settings
from simplane.core.deps import DbSession
from simplane.core.security import TokenSigner

PROBLEM = "application/problem+json"


def problem(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/") and body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body


def fields(body: dict) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


def group_names(client) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.get("/v1/things-groups", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [g["name"] for g in response.json()["items"]]


def test_200_read(shared_tenant):
    response = shared_tenant.admin.get("/v1/me")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["role"] == "admin"


def test_201_names_the_new_resource_in_location(tenant):
    created = tenant.admin.post("/v1/things-groups", json={"name": "fleet"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/v1/things-groups/{body['id']}"
    fetched = tenant.admin.get(created.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["etag"] == created.headers["etag"]


def test_302_lookup_redirects_to_the_thing(tenant):
    thing = tenant.things(1)[0]
    response = tenant.admin.get("/v1/things/lookup", params={"iccid": thing["iccid"]},
                                follow_redirects=False)
    assert response.status_code == 302, response.text
    assert response.headers["location"] == f"/v1/things/{thing['id']}"
    assert tenant.admin.get(response.headers["location"]).json()["iccid"] == thing["iccid"]


def test_400_malformed_json(tenant):
    before = group_names(tenant.admin)
    response = tenant.admin.post("/v1/things-groups", content=b'{"name": "half',
                                 headers={"content-type": "application/json"})
    body = problem(response, 400, "validation_error")
    assert fields(body) == {"body"}
    assert group_names(tenant.admin) == before


@pytest.mark.parametrize("payload", [[1, 2], "just a string", 42])
def test_400_body_that_is_not_an_object(shared_tenant, payload):
    problem(shared_tenant.admin.post("/v1/things-groups", json=payload), 400, "validation_error")


def test_400_unknown_field_is_named(tenant):
    response = tenant.admin.post("/v1/things-groups", json={"name": "ok", "colour": "red"})
    body = problem(response, 400, "validation_error")
    assert fields(body) == {"colour"}
    assert "colour" in body["detail"]
    assert "ok" not in group_names(tenant.admin)


def test_400_names_every_bad_field(shared_tenant):
    response = shared_tenant.admin.post("/v1/things-groups",
                                 json={"name": "", "description": "x" * 2001, "extra": 1})
    assert fields(problem(response, 400, "validation_error")) == {"name", "description", "extra"}


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/v1/things-groups", {"limit": "0"}, "limit"),
    ("/v1/things-groups", {"limit": "1001"}, "limit"),
    ("/v1/things-groups", {"limit": "many"}, "limit"),
    ("/v1/things", {"state": "FLYING"}, "state"),
    ("/v1/things", {"iccid": "12"}, "iccid"),
    ("/v1/things", {"stat": "ACTIVE"}, "stat"),
    ("/v1/things-groups", {"limit": "5", "colour": "red"}, "colour"),
])
def test_400_bad_query_parameter(shared_tenant, path, params, field):
    body = problem(shared_tenant.admin.get(path, params=params), 400, "validation_error")
    assert field in fields(body)


def test_400_nul_characters_anywhere(tenant):
    # PostgreSQL text cannot hold U+0000; both engines refuse it the same way.
    admin = tenant.admin
    cases = [
        (admin.post("/v1/things-groups", json={"name": "a\x00b"}), {"name"}),
        (admin.post("/v1/things-groups", json={"name": "ok", "description": "\x00"}),
         {"description"}),
        (admin.get("/v1/things", params={"things_group_id": "grp\x00"}), {"things_group_id"}),
        (admin.get("/v1/things-groups/grp%00x"), {"group_id"}),
    ]
    for response, named in cases:
        assert fields(problem(response, 400, "validation_error")) == named
    assert "ok" not in group_names(admin)


def test_400_bad_cursor(shared_tenant):
    response = shared_tenant.admin.get("/v1/things-groups", params={"cursor": "not-a-cursor"})
    assert "cursor" in fields(problem(response, 400, "validation_error"))


def test_no_422_for_any_invalid_request(shared_tenant):
    group = shared_tenant.admin.get("/v1/things-groups").json()["items"][0]
    for response in (
        shared_tenant.admin.patch(f"/v1/things-groups/{group['id']}", json={"name": 5}),
        shared_tenant.admin.patch(f"/v1/things-groups/{group['id']}", content=b"nope",
                           headers={"content-type": "application/json"}),
        shared_tenant.admin.post("/v1/users", json={}),
        shared_tenant.admin.get("/v1/events", params={"limit": "-1"}),
    ):
        problem(response, 400, "validation_error")


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-token",
    "Bearer a.b", "Token abc",
])
def test_401_missing_or_malformed_token(shared_tenant, clients, authorization):
    client = clients(shared_tenant.base_url)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get("/v1/me", headers=headers)
    problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_401_token_signed_with_another_key(shared_tenant, clients):
    foreign = TokenSigner("some-other-secret").issue(shared_tenant.client_id,
                                                     shared_tenant.account_id, 3600)
    response = clients(shared_tenant.base_url, foreign).get("/v1/things")
    problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_403_role_may_not_write(tenant):
    viewer = tenant.client("viewer")
    before = group_names(tenant.admin)
    body = problem(viewer.post("/v1/things-groups", json={"name": "nope"}), 403, "forbidden")
    assert "viewer" in body["detail"]
    assert group_names(tenant.admin) == before


@pytest.mark.parametrize("path", ["/v1/no-such-route", "/no-such-route", "/v1/things/x/y/z"])
def test_404_unknown_route(shared_tenant, path):
    problem(shared_tenant.admin.get(path), 404, "not_found")


def test_404_unknown_id_and_other_accounts_id_look_alike(tenant, other_tenant):
    theirs = other_tenant.admin.get("/v1/things-groups").json()["items"][0]["id"]
    missing = theirs[:4] + "A" * (len(theirs) - 4)
    bodies = [problem(tenant.admin.get(f"/v1/things-groups/{group_id}"), 404, "not_found")
              for group_id in (missing, theirs)]
    bodies[0]["detail"] = bodies[0]["detail"].replace(missing, "ID")
    bodies[1]["detail"] = bodies[1]["detail"].replace(theirs, "ID")
    assert bodies[0] == bodies[1]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/v1/things-groups", {"GET", "POST"}),
    ("PUT", "/v1/things-groups/{id}", {"GET", "PATCH", "DELETE"}),
    ("POST", "/v1/me", {"GET"}),
    ("GET", "/v1/oauth2/token", {"POST"}),
])
def test_405_lists_allowed_methods(shared_tenant, method, path, allowed):
    group_id = shared_tenant.admin.get("/v1/things-groups").json()["items"][0]["id"]
    response = shared_tenant.admin.request(method, path.replace("{id}", group_id), json={})
    problem(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


def test_412_if_match_mismatch_changes_nothing(tenant):
    created = tenant.admin.post("/v1/things-groups", json={"name": "before"})
    location, etag = created.headers["location"], created.headers["etag"]
    response = tenant.admin.patch(location, json={"name": "after"},
                                  headers={"If-Match": '"0000"'})
    problem(response, 412, "etag_mismatch")
    current = tenant.admin.get(location)
    assert current.json()["name"] == "before"
    assert current.headers["etag"] == etag


def test_429_when_the_bucket_is_empty(tenant, build_app, serve, clients):
    base_url = serve(build_app(rate_limit_per_second=1, rate_limit_burst=3))
    client = clients(base_url, tenant.admin.headers["Authorization"].removeprefix("Bearer "))
    responses = [client.get("/v1/me") for _ in range(6)]
    # 1 token/s refills far slower than six back-to-back requests drain a burst of 3.
    assert [r.status_code for r in responses[:3]] == [200, 200, 200]
    refused = [r for r in responses[3:] if r.status_code == 429]
    assert refused, [r.status_code for r in responses]
    body = problem(refused[0], 429, "rate_limited")
    assert int(refused[0].headers["retry-after"]) >= 1
    assert refused[0].headers["ratelimit-remaining"] == "0"
    assert "burst 3" in body["detail"]


def test_500_is_problem_json_without_internals(tenant, build_app, serve, clients):
    app = build_app()

    def broken(session: DbSession) -> dict:
        # A NOT NULL violation: the driver's message quotes the SQL and the table.
        session.execute(text("INSERT INTO accounts (id) VALUES ('acc_broken')"))
        return {}

    app.add_api_route("/v1/test-broken", broken, methods=["GET"])
    client = clients(serve(app), tenant.admin.headers["Authorization"].removeprefix("Bearer "))
    response = client.get("/v1/test-broken", headers={"X-Request-Id": "req-boom-1"})
    body = problem(response, 500, "internal_error")
    assert set(body) == {"type", "title", "status", "detail", "code"}
    lowered = response.text.lower()
    for leak in ("traceback", "insert", "accounts", "integrity", "sqlalchemy", "not null",
                 'file "'):
        assert leak not in lowered, response.text
    assert response.headers["x-request-id"] == "req-boom-1"


def _unreachable_url(backend, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if backend.name == "sqlite":
        # A directory where the database file should be: SQLite cannot open it.
        return f"sqlite:///{tmp_path}"
    return backend.url.rsplit("/", 1)[0] + f"/simplane_missing_{secrets.token_hex(4)}"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on a port just released by a socket that never called listen().
    return f"postgresql://postgres@127.0.0.1:{port}/simplane"


@pytest.mark.parametrize("where", ["engine", "closed_port"])
def test_503_when_the_database_is_unavailable(backend, tmp_path, serve, clients, where):
    url = _unreachable_url(backend, tmp_path) if where == "engine" else _closed_port_url()
    settings = load_settings(database_url=url, data_dir=str(tmp_path),
                             secret_key=backend.settings.secret_key)
    base_url = serve(create_app(settings))
    token = TokenSigner(settings.resolved_secret_key()).issue("cli_x", "acc_x", 3600)
    client = clients(base_url, token)

    for response in (client.get("/v1/me"), client.get("/v1/things"),
                     client.get("/v1/things/thg_038GRB1BGTTS8SJC9Q1NGK939G6FF"),
                     client.post("/v1/things-groups", json={"name": "x"}),
                     client.post("/v1/things-groups", json={"name": "x"},
                                 headers={"Idempotency-Key": "k-503"}),
                     client.post("/v1/oauth2/token", data={"grant_type": "client_credentials",
                                                           "client_id": "cli_x",
                                                           "client_secret": "sk_x"})):
        body = problem(response, 503, "service_unavailable")
        assert int(response.headers["retry-after"]) >= 1
        assert "sql" not in body["detail"].lower()
        assert response.headers["x-request-id"]

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert int(ready.headers["retry-after"]) >= 1
    assert client.get("/healthz").status_code == 200
