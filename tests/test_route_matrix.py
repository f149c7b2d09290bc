"""Every /v1 route against every role, and against another account's ids (api.md §1 Tenancy, §2).

The routes and who may call them come from one table, `route_table.ROUTES`; the first test keeps
that table equal to what the app serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from route_table import (
    PARAMS,
    READ_BACK,
    ROLES,
    ROUTES,
    Route,
    World,
    account_state,
    build_world,
    public_port,
    subnet,
)

from simplane.app import create_app
from simplane.billing.cycles import period_of
from simplane.core.ids import new_id
from simplane.models import utcnow
from simplane.things.identifiers import random_iccid, random_imsi

PROBLEM = "application/problem+json"
# Headers that differ between any two responses, whatever they answer.
_PER_RESPONSE = {"date", "x-request-id", "ratelimit-remaining", "ratelimit-reset"}


@pytest.fixture(scope="module")
def world(server, backend) -> Iterator[World]:  # type: ignore[no-untyped-def]
    world = build_world(server.base_url, backend)
    yield world
    world.a.close()
    world.b.close()


def test_table_lists_every_route_the_app_serves(backend) -> None:  # type: ignore[no-untyped-def]
    app = create_app(backend.settings, backend.database)
    served = set()
    # Included routers nest their routes; iter_route_contexts flattens them with their prefix.
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if path.startswith("/v1"):
            methods = getattr(route, "methods", None) or {"ANY"}
            served |= {(method, path) for method in methods if method != "HEAD"}
    table = [route.key for route in ROUTES]
    assert len(table) == len(set(table)), "a route has two rows"
    assert set(table) == served
    kinds = [route.kinds for route in ROUTES]
    assert all(set(k) == set(r.params) for k, r in zip(kinds, ROUTES, strict=True)), \
        "a path parameter that does not follow a collection segment"
    unknown = {kind for k in kinds for kind in k.values()} - PARAMS.keys()
    assert not unknown, f"collections without a PARAMS entry: {unknown}"


def _shape(response: httpx.Response, ids: dict[str, str]) -> tuple:
    """The response with the ids it was asked about replaced by their parameter names."""
    text = response.text
    for name, value in ids.items():
        text = text.replace(value, f"<{name}>")
    headers = sorted(h for h in response.headers if h not in _PER_RESPONSE)
    return response.status_code, response.headers.get("content-type"), json.loads(text), headers


def _etags(world: World, route: Route, ids: dict[str, str]) -> dict[str, str | None]:
    tags = {}
    for name, value in ids.items():
        if route.kinds[name] in READ_BACK:
            response = world.a.admin.get(READ_BACK[route.kinds[name]].format(value))
            assert response.status_code == 200, response.text
            tags[name] = response.headers.get("etag")
    return tags


def _foreign_variants(route: Route, world: World) -> list[tuple[dict[str, str], set[str]]]:
    """Path ids to try as B, each with the names of the parameters that carry A's ids.

    All of A's ids; and, where a path has several ids, each of A's ids alone among B's own.
    """
    names = route.params
    variants = [({n: route.param(n).shared(world) for n in names}, set(names))]
    if len(names) > 1:
        for foreign in names:
            ids = {n: route.param(n).shared(world) if n == foreign else route.param(n).own(world)
                   for n in names}
            variants.append((ids, {foreign}))
    return variants


WITH_IDS = [route for route in ROUTES if route.params]


@pytest.mark.parametrize("route", WITH_IDS, ids=str)
def test_another_accounts_id_is_not_found_like_an_unknown_id(world: World, backend,  # type: ignore[no-untyped-def]
                                                             route: Route) -> None:
    for ids, foreign in _foreign_variants(route, world):
        etags = _etags(world, route, {n: ids[n] for n in foreign})
        before = account_state(backend, world.a.account_id)

        answer = route.send(world.b.admin, world, ids)

        assert answer.status_code == 404, (ids, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["code"] == "not_found"
        unknown_ids = {n: route.param(n).unknown() if n in foreign else ids[n] for n in ids}
        unknown = route.send(world.b.admin, world, unknown_ids)
        assert _shape(answer, {n: ids[n] for n in foreign}) == \
            _shape(unknown, {n: unknown_ids[n] for n in foreign})
        assert account_state(backend, world.a.account_id) == before
        assert _etags(world, route, {n: ids[n] for n in foreign}) == etags


@pytest.mark.parametrize("field", ["iccid", "imsi"])
def test_lookup_of_another_accounts_sim_is_not_found_like_an_unknown_one(world: World,
                                                                         field: str) -> None:
    unknown_value = random_iccid() if field == "iccid" else random_imsi()
    answer = world.b.admin.get("/v1/things/lookup", params={field: world.thing[field]})
    unknown = world.b.admin.get("/v1/things/lookup", params={field: unknown_value})
    assert answer.status_code == 404, answer.text
    assert _shape(answer, {field: world.thing[field]}) == _shape(unknown, {field: unknown_value})


# A body field naming one of A's ids, and the kind of id it takes.
_REFERENCES = {"things_group_id": ("things_group", lambda w: w.group["id"]),
               "network_id": ("network", lambda w: w.group["network_id"]),
               "ip_profile_id": ("ip_profile", lambda w: w.group["ip_profile_id"]),
               "thing_id": ("thing", lambda w: w.mine.nat_thing["id"]),
               "vpn_tunnel_id": ("vpn_tunnel", lambda w: w.mine.tunnel["id"])}
# The rest of a valid body for each POST.
_POST_BODIES = {
    "/v1/things-groups": lambda w: {"name": w.unique("ref")},
    "/v1/networks/{b_network}/nat-rules": lambda w: {"protocol": "TCP",
                                                     "public_port": public_port(),
                                                     "private_port": 22},
    "/v1/networks/{b_network}/routes": lambda w: {"destination": subnet(),
                                                  "target": "VPN_TUNNEL"},
}


@pytest.mark.parametrize(("method", "path", "field"), [
    ("PATCH", "/v1/things/{b_thing}", "things_group_id"),
    ("POST", "/v1/things-groups", "network_id"),
    ("POST", "/v1/things-groups", "ip_profile_id"),
    ("PATCH", "/v1/things-groups/{b_group}", "network_id"),
    ("PATCH", "/v1/things-groups/{b_group}", "ip_profile_id"),
    ("POST", "/v1/networks/{b_network}/nat-rules", "thing_id"),
    ("POST", "/v1/networks/{b_network}/routes", "vpn_tunnel_id"),
])
def test_body_reference_to_another_accounts_id_is_an_unknown_reference(  # type: ignore[no-untyped-def]
        world: World, backend, method: str, path: str, field: str) -> None:
    url = path.format(b_thing=world.b_thing["id"], b_group=world.b_group["id"],
                      b_network=world.theirs.network["id"])
    kind, of_a = _REFERENCES[field]
    foreign = of_a(world)
    body = _POST_BODIES[path](world) if method == "POST" else {}
    before = [account_state(backend, t.account_id) for t in (world.a, world.b)]

    answer = world.b.admin.request(method, url, json={**body, field: foreign})

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "unknown_reference"
    assert answer.json()["errors"][0]["field"] == field
    fake = new_id(kind)
    unknown = world.b.admin.request(method, url, json={**body, field: fake})
    assert _shape(answer, {field: foreign}) == _shape(unknown, {field: fake})
    assert [account_state(backend, t.account_id) for t in (world.a, world.b)] == before


def test_lists_and_filters_never_show_another_accounts_rows(world: World, other_tenant) -> None:  # type: ignore[no-untyped-def]
    a = world.a
    secrets_of_a = {a.account_id, a.admin_user_id, a.client_id, world.thing["id"],
                    world.thing["things_group_id"],
                    world.thing["iccid"], world.thing["imsi"], world.group["id"],
                    world.user["id"], world.user["email"], world.credential["client_id"],
                    world.mine.nat_thing["id"], *world.mine.ids().values()}
    collections = [r for r in ROUTES if r.method == "GET" and not r.params
                   and r.roles and r.path != "/v1/things/lookup"
                   and not r.path.startswith("/v1/billing/")]  # the report is below
    filtered = [("/v1/things", {"things_group_id": world.thing["things_group_id"]}),
                ("/v1/things", {"iccid": world.thing["iccid"]}),
                ("/v1/events", {"thing_id": world.thing["id"]}),
                ("/v1/sms", {"thing_id": world.thing["id"]}),
                ("/v1/billing/reports", {"period": period_of(utcnow())})]
    for path, params in [(r.path, {}) for r in collections] + filtered:
        if path != "/v1/apns":  # the one APN is the platform's, not the account's
            # The same call as A shows A's rows, or this test could not fail.
            mine = a.admin.get(path, params=params)
            assert any(s in mine.text for s in secrets_of_a), (path, mine.text)
        answer = other_tenant.admin.get(path, params=params)
        assert answer.status_code == 200, answer.text
        leaked = [s for s in secrets_of_a if s in answer.text]
        assert not leaked, (path, params, leaked)


CASES = [(route, role) for route in ROUTES if route.roles is not None for role in ROLES]


@pytest.mark.parametrize(("route", "role"), CASES, ids=lambda v: str(v).replace(" ", "_"))
def test_role_matrix(world: World, backend, route: Route, role: str) -> None:  # type: ignore[no-untyped-def]
    ids = route.ids(world)
    before = account_state(backend, world.a.account_id)

    answer = route.send(world.clients[role], world, ids)

    assert route.roles is not None
    if role in route.roles:
        assert 200 <= answer.status_code < 400, answer.text
        return
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == "forbidden"
    assert account_state(backend, world.a.account_id) == before


@pytest.mark.parametrize("route", [r for r in ROUTES if r.roles is not None], ids=str)
@pytest.mark.parametrize("token", [None, "Bearer not-a-token", "Basic YWRtaW46YWRtaW4="],
                         ids=["none", "garbage", "basic"])
def test_every_route_but_the_token_endpoint_needs_a_bearer_token(  # type: ignore[no-untyped-def]
        world: World, backend, route: Route, token: str | None) -> None:
    ids = {n: route.param(n).shared(world) for n in route.params}
    before = account_state(backend, world.a.account_id)
    headers = {"Authorization": token} if token else {}
    with httpx.Client(base_url=world.a.base_url, headers=headers) as anonymous:
        answer = route.send(anonymous, world, ids)
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["code"] == "unauthorized"
    assert account_state(backend, world.a.account_id) == before


def test_token_endpoint_is_public(world: World) -> None:
    token_route = next(r for r in ROUTES if r.roles is None)
    with httpx.Client(base_url=world.a.base_url) as anonymous:
        answer = token_route.send(anonymous, world, {})
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"
