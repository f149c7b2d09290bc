"""The fast lane (`core.fastlane`) answers what FastAPI answers: every request here goes to the
session's server (lanes on) and to a server of the same app without its lanes, on the same
database, and the two answers must be equal, status, body and headers. The lane's counter
tells which requests it took: a test that expects the lane and finds FastAPI fails."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from prometheus_client import REGISTRY

from simplane.app import create_app
from simplane.core.fastlane import FastLane, FastLaneMiddleware, Lane
from simplane.things.routes import _plain_page
from simplane.users.service import create_network_credential

THING, LIST = "/v1/things/{thing_id}", "/v1/things"
# Fresh on every response, or counted per server: not part of what a route answers.
_VARYING = {"date", "x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}


@pytest.fixture(scope="module")
def laneless(pytestconfig: pytest.Config, backend: Any) -> Iterator[str]:
    root = next(p for p in pytestconfig.pluginmanager.get_plugins()
                if getattr(p, "__name__", "") == "conftest" and hasattr(p, "ServerThread"))
    app = create_app(backend.settings, backend.database)
    del app.state.fast_lane
    with root.ServerThread(app, root.free_port()) as running:
        yield running.base_url


def served(route: str) -> float:
    return REGISTRY.get_sample_value("simplane_fast_lane_requests_total", {"route": route}) or 0.0


def _answer(response: httpx.Response, base_url: str) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v.replace(base_url, "BASE") for k, v in response.headers.items()
               if k not in _VARYING}
    return response.status_code, response.content, headers


def same_answer(tenant, laneless: str, method: str, path: str, *,  # type: ignore[no-untyped-def]
                lane: str | None, token: str | None = None, query: str = "",
                **headers: str) -> httpx.Response:
    """`method path?query` on both servers: the same answer, and taken by the lane of route
    `lane` (None: by FastAPI)."""
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    target = path + (f"?{query}" if query else "")
    before = {route: served(route) for route in (THING, LIST)}
    with httpx.Client(base_url=tenant.base_url, timeout=30) as client:
        ours = client.request(method, target, headers=headers)
    after = {route: served(route) for route in (THING, LIST)}
    with httpx.Client(base_url=laneless, timeout=30) as client:
        theirs = client.request(method, target, headers=headers)
    assert _answer(ours, tenant.base_url) == _answer(theirs, laneless)
    expected = {route: before[route] + (route == lane) for route in (THING, LIST)}
    assert after == expected, f"{method} {target}: lane {lane!r} expected"
    return ours


@pytest.fixture
def token(tenant) -> str:  # type: ignore[no-untyped-def]
    return tenant.admin.headers["Authorization"].removeprefix("Bearer ")


def test_a_thing_read_in_the_lane(tenant, other_tenant, laneless, token):
    mine, theirs = tenant.things(1)[0], other_tenant.things(1)[0]
    got = same_answer(tenant, laneless, "GET", f"/v1/things/{mine['id']}", lane=THING,
                      token=token)
    assert got.status_code == 200 and got.json() == mine and got.headers["etag"]
    for thing_id in (theirs["id"], "thg_nothing", "a b"):
        got = same_answer(tenant, laneless, "GET", f"/v1/things/{thing_id}", lane=THING,
                          token=token)
        assert got.status_code == 404, got.text
    # NUL is refused by the app's own check, which the lane calls before the route.
    got = same_answer(tenant, laneless, "GET", "/v1/things/a%00b", lane=THING, token=token)
    assert got.status_code == 400, got.text


def test_the_callers_the_lane_refuses(tenant, backend, laneless):
    thing = tenant.things(1)[0]
    path = f"/v1/things/{thing['id']}"
    for token in (None, "not-a-token", "a.b"):
        got = same_answer(tenant, laneless, "GET", path, lane=THING, token=token)
        assert got.status_code == 401, got.text
    with backend.database.transaction() as session:
        client_id, secret = create_network_credential(session, f"lane-{secrets.token_hex(3)}")
    network = tenant.token(client_id, secret)
    got = same_answer(tenant, laneless, "GET", path, lane=THING, token=network)
    assert got.status_code == 403, got.text
    user = tenant.admin.post("/v1/users", json={
        "email": f"gone-{secrets.token_hex(4)}@example.com", "name": "gone", "role": "viewer"})
    credential = tenant.admin.post(f"/v1/users/{user.json()['id']}/credentials", json={}).json()
    revoked = tenant.token(credential["client_id"], credential["client_secret"])
    assert tenant.admin.delete(f"/v1/users/{user.json()['id']}").status_code == 204
    for lane, target in ((THING, path), (LIST, "/v1/things")):
        got = same_answer(tenant, laneless, "GET", target, lane=lane, token=revoked)
        assert got.status_code == 401, got.text


def test_what_the_thing_lane_leaves_to_fastapi(tenant, laneless, token):
    thing = tenant.things(1)[0]
    path = f"/v1/things/{thing['id']}"
    got = same_answer(tenant, laneless, "HEAD", path, lane=None, token=token)
    assert got.status_code == 405, got.text  # FastAPI's GET routes do not answer HEAD
    got = same_answer(tenant, laneless, "GET", path, lane=None, token=token, query="x=1")
    assert got.status_code == 400, got.text
    # The lookup route comes before the Thing's in FastAPI's order, and keeps its path.
    got = same_answer(tenant, laneless, "GET", "/v1/things/lookup", lane=None, token=token)
    assert got.status_code == 400, got.text
    for other in (f"{path}/", f"{path}/sessions"):
        same_answer(tenant, laneless, "GET", other, lane=None, token=token)


def test_pages_in_the_lane(tenant, laneless, token):
    tenant.things(3)
    got = same_answer(tenant, laneless, "GET", "/v1/things", lane=LIST, token=token)
    assert got.status_code == 200 and len(got.json()["items"]) == 3
    got = same_answer(tenant, laneless, "GET", "/v1/things", lane=LIST, token=token,
                      query="limit=2")
    assert len(got.json()["items"]) == 2 and "link" in got.headers
    cursor = parse_qs(urlsplit(got.headers["link"].split(">")[0].lstrip("<")).query)["cursor"][0]
    assert cursor == got.json()["next_cursor"]
    got = same_answer(tenant, laneless, "GET", "/v1/things", lane=LIST, token=token,
                      query=f"limit=2&cursor={cursor}")
    assert len(got.json()["items"]) == 1 and "link" not in got.headers
    got = same_answer(tenant, laneless, "GET", "/v1/things", lane=LIST, token=token,
                      query="cursor=bm90LWEtY3Vyc29y")
    assert got.status_code == 400 and got.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("query, status", [
    ("limit=0", 400), ("limit=1001", 400), ("limit=abc", 400), ("limit=", 400),
    ("limit=007", 200), ("cursor=", 200), ("limit=1&limit=2", 200), ("state=ACTIVE", 200),
    ("tag=a&tag=b", 200), ("nope=1", 400), ("limit=%00", 400),
])
def test_what_the_list_lane_leaves_to_fastapi(tenant, laneless, token, query, status):
    got = same_answer(tenant, laneless, "GET", "/v1/things", lane=None, token=token,
                      query=query)
    assert got.status_code == status, got.text


def test_plain_page_arguments():
    assert _plain_page({}) == {}
    assert _plain_page({"limit": "5", "cursor": "abc"}) == {"limit": 5, "cursor": "abc"}
    assert _plain_page({"limit": "1000"}) == {"limit": 1000}
    for query in ({"limit": "1001"}, {"limit": "0"}, {"limit": "-1"}, {"limit": "٣"},
                  {"limit": " 5"}, {"cursor": ""}, {"state": "ACTIVE"}):
        assert _plain_page(query) is None, query


def _app_with(route: Any, **kwargs: Any) -> FastAPI:
    app = FastAPI()
    router = APIRouter()
    router.add_api_route("/things/lookup", _lookup, methods=["GET"])
    router.add_api_route(route, kwargs.pop("endpoint"), methods=["GET"], **kwargs)
    app.include_router(router, prefix="/v1")
    return app


async def _lookup(request: Request) -> None: ...


async def _thing(thing_id: str, request: Request) -> None: ...


async def _with_header(thing_id: str, request: Request, x_key: str = Header()) -> None: ...


async def _with_response(thing_id: str, request: Request, response: Response) -> None: ...


async def _needs_header(x_key: str = Header()) -> str:
    return x_key


async def _with_deep_dependency(thing_id: str, request: Request,
                                key: str = Depends(_needs_header)) -> None: ...


async def _by_number(thing_id: int, request: Request) -> None: ...


def _sync_check(request: Request) -> None: ...


async def _with_sync_dependency(thing_id: str, request: Request,
                                checked: None = Depends(_sync_check)) -> None: ...


def _sync_route(thing_id: str, request: Request) -> None: ...


def test_a_lane_is_found_in_fastapis_order():
    lanes = FastLane(_app_with("/things/{thing_id}", endpoint=_thing), [Lane(_thing)])
    assert lanes.find("/v1/things/lookup") is None
    assert lanes.find("/v1/things/") is None and lanes.find("/v1/things/a/b") is None
    compiled, params = lanes.find("/v1/things/thg_1")  # type: ignore[misc]
    assert params == {"thing_id": "thg_1"} and compiled.template == "/v1/things/{thing_id}"


async def _section(section: str, request: Request) -> None: ...


def test_an_exact_path_an_earlier_route_takes_is_not_the_lanes():
    app = FastAPI()
    app.add_api_route("/v1/{section}", _section, methods=["GET"])
    app.add_api_route("/v1/things", _lookup, methods=["GET"])
    app.add_api_route("/v2/things", _thing_list, methods=["GET"])
    lanes = FastLane(app, [Lane(_lookup), Lane(_thing_list)])
    assert lanes.find("/v1/things") is None
    compiled, params = lanes.find("/v2/things")  # type: ignore[misc]
    assert params == {} and compiled.template == "/v2/things"


async def _thing_list(request: Request) -> None: ...


@pytest.mark.parametrize("endpoint, route, reason", [
    (_with_header, "/things/{thing_id}", "no headers"),
    (_with_response, "/things/{thing_id}", "parameters only"),
    (_with_deep_dependency, "/things/{thing_id}", "dependencies of the request alone"),
    (_by_number, "/things/{thing_id:int}", "as text"),
    (_with_sync_dependency, "/things/{thing_id}", "not a coroutine function"),
    (_sync_route, "/things/{thing_id}", "awaits its route"),
])
def test_a_route_the_lane_cannot_call_is_refused_at_start(endpoint, route, reason):
    with pytest.raises(ValueError, match=reason):
        FastLane(_app_with(route, endpoint=endpoint), [Lane(endpoint)])


def test_a_lane_names_a_route_of_the_app():
    with pytest.raises(ValueError, match="not one GET route"):
        FastLane(_app_with("/things/{thing_id}", endpoint=_thing), [Lane(_lookup), Lane(_by_number)])


async def _model_route(thing_id: str, request: Request) -> dict[str, str]:
    return {"id": thing_id}


async def _drive(app: FastAPI, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [], "app": app, "state": {}}
    await FastLaneMiddleware(app)(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_lane_route_that_returns_no_response_is_an_error():
    app = _app_with("/things/{thing_id}", endpoint=_model_route)
    app.state.fast_lane = FastLane(app, [Lane(_model_route)])
    with pytest.raises(TypeError, match="returns a Response, not dict"):
        asyncio.run(_drive(app, "/v1/things/thg_1"))


def test_dependency_overrides_send_the_lane_to_fastapi():
    app = _app_with("/things/{thing_id}", endpoint=_model_route)
    app.state.fast_lane = FastLane(app, [Lane(_model_route)])
    app.dependency_overrides[_needs_header] = lambda: "x"
    assert asyncio.run(_drive(app, "/v1/things/thg_1")) == (200, b'{"id":"thg_1"}')
