"""MO messages through POST /v1/network/sms with a network credential, and the wall between
network credentials (only /v1/network/*) and customer tokens (never /v1/network/*)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.routing import APIRoute
from sms_helpers import active_thing, sms_events

from simplane.things.identifiers import random_imsi

NETWORK_PREFIX = "/v1/network/"
NOT_CUSTOMER = ("/v1/oauth2/token",)


def routes(server) -> list[tuple[str, str]]:
    """Every (method, path) the running app serves under /v1, path parameters filled in."""
    try:  # FastAPI >= 0.16x keeps included routers nested; this flattens them
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        iter_route_contexts = iter  # type: ignore[assignment]
    found = []
    for route in iter_route_contexts(server.server.config.app.routes):
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute) and route.path.startswith("/v1/"):
            path = re.sub(r"\{[^}]+\}", "zzz_00000000000000000000000000000", route.path)
            found.extend((method, path) for method in sorted(route.methods))
    return found


def call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return client.request(method, path, **body)


def test_an_mo_message_arrives(tenant, network) -> None:
    thing = active_thing(tenant)
    response = network.post("/v1/network/sms", json={"imsi": thing["imsi"],
                                                     "text": "temp=21.5 €"})
    assert response.status_code == 201, response.text
    message = response.json()
    assert response.headers["Location"] == f"/v1/sms/{message['id']}"
    assert (message["direction"], message["status"], message["encoding"], message["segments"],
            message["thing_id"], message["text"]) == (
        "MO", "RECEIVED", "GSM7", 1, thing["id"], "temp=21.5 €")
    assert tenant.admin.get(f"/v1/sms/{message['id']}").json() == message

    listed = tenant.admin.get(f"/v1/things/{thing['id']}/sms", params={"direction": "MO"})
    assert [m["id"] for m in listed.json()["items"]] == [message["id"]]
    assert tenant.admin.get(f"/v1/things/{thing['id']}/sms",
                            params={"direction": "MT"}).json()["items"] == []
    received = tenant.admin.get("/v1/sms", params={"status": "RECEIVED"}).json()["items"]
    assert [m["id"] for m in received] == [message["id"]]

    [event] = sms_events(tenant.admin, thing["id"], message["id"], "sms.received")
    assert event["thing_id"] == thing["id"]
    assert (event["data"]["encoding"], event["data"]["segments"]) == ("GSM7", 1)


def test_mo_encodings_and_segments(tenant, network) -> None:
    thing = active_thing(tenant)
    for body, encoding, segments in (
            ({"text": "Ж" * 135}, "UCS2", 3),
            ({"text": "a" * 161}, "GSM7", 2),
            ({"data_base64": "AAECAw=="}, "BINARY", 1)):
        response = network.post("/v1/network/sms", json={"imsi": thing["imsi"], **body})
        assert response.status_code == 201, response.text
        assert (response.json()["encoding"], response.json()["segments"]) == (encoding, segments)
        assert response.json()["data_base64" if "data_base64" in body else "text"] == \
            next(iter(body.values()))


@pytest.mark.parametrize("patch", [None, {"state": "SUSPENDED"}, {"services": {"sms": False}}])
def test_mo_from_a_thing_that_may_not_use_sms_is_refused_and_recorded(
        tenant, network, patch) -> None:
    if patch is None:
        thing = tenant.things(1)[0]  # PROVISIONED
    else:
        thing = active_thing(tenant)
        assert tenant.admin.patch(f"/v1/things/{thing['id']}", json=patch).status_code == 200
    response = network.post("/v1/network/sms", json={"imsi": thing["imsi"], "text": "hello"})
    assert response.status_code == 412, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "sms_not_allowed"
    assert thing["imsi"] in response.json()["detail"]

    [rejected] = tenant.admin.get("/v1/sms", params={"status": "REJECTED"}).json()["items"]
    assert (rejected["thing_id"], rejected["direction"], rejected["text"], rejected["error"]) \
        == (thing["id"], "MO", "hello", "sms_not_allowed")
    assert tenant.admin.get("/v1/sms", params={"status": "RECEIVED"}).json()["items"] == []
    assert sms_events(tenant.admin, thing["id"], rejected["id"], "sms.received") == []
    [event] = sms_events(tenant.admin, thing["id"], rejected["id"])
    assert event["data"]["to"] == "REJECTED"
    # Refused messages are not billed.
    usage = tenant.admin.get(f"/v1/things/{thing['id']}/usage").json()["items"]
    assert sum(day["sms_mo"] for day in usage) == 0


def test_unknown_imsi_is_404_and_bad_bodies_400(network) -> None:
    response = network.post("/v1/network/sms", json={"imsi": random_imsi(), "text": "hi"})
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    for body in ({"imsi": "12345", "text": "hi"}, {"text": "hi"},
                 {"imsi": random_imsi(), "data_base64": "@@@"},
                 {"imsi": random_imsi(), "text": "hi", "data_base64": "AA=="},
                 {"imsi": random_imsi(), "text": "a" * 1531},
                 {"imsi": random_imsi(), "text": "a\u0000"}):
        response = network.post("/v1/network/sms", json=body)
        assert response.status_code == 400, (body, response.text)


def test_mo_segments_are_counted_per_day(tenant, network) -> None:
    thing = active_thing(tenant)
    for text in ("a" * 161, "Ж" * 71, "ok"):  # 2 + 2 + 1 segments
        assert network.post("/v1/network/sms", json={"imsi": thing["imsi"],
                                                     "text": text}).status_code == 201
    [day] = tenant.admin.get(f"/v1/things/{thing['id']}/usage").json()["items"]
    assert day["date"] == datetime.now(UTC).date().isoformat()
    assert (day["sms_mo"], day["sms_mt"]) == (5, 0)


def test_a_network_credential_is_refused_on_every_customer_route(server, network) -> None:
    customer = [(m, p) for m, p in routes(server)
                if not p.startswith(NETWORK_PREFIX) and p not in NOT_CUSTOMER]
    # The sweep must really cover the API, not an empty or partial route table.
    paths = {p for _, p in customer}
    for expected in ("/v1/me", "/v1/things", "/v1/sms", "/v1/events", "/v1/account",
                     "/v1/users", "/v1/audit-log"):
        assert expected in paths, expected
    assert len(customer) > 40
    allowed = []
    for method, path in customer:
        response = call(network, method, path)
        if response.status_code != 403:
            allowed.append((method, path, response.status_code))
    assert allowed == []


def test_customer_tokens_are_refused_on_every_network_route(server, tenant) -> None:
    thing = active_thing(tenant)
    network_routes = [(m, p) for m, p in routes(server) if p.startswith(NETWORK_PREFIX)]
    assert ("POST", "/v1/network/sms") in network_routes
    for role in ("admin", "manager"):
        client = tenant.client(role)
        for method, path in network_routes:
            assert call(client, method, path).status_code == 403, (role, method, path)
        refused = client.post("/v1/network/sms", json={"imsi": thing["imsi"], "text": "hi"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "forbidden"
    assert tenant.admin.get("/v1/sms", params={"thing_id": thing["id"]}).json()["items"] == []


def test_network_routes_need_a_valid_token(server) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = httpx.post(f"{server.base_url}/v1/network/sms", headers=headers,
                              json={"imsi": random_imsi(), "text": "hi"})
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_network_secret_gets_no_token(server, network_credential) -> None:
    client_id, _ = network_credential
    response = httpx.post(f"{server.base_url}/v1/oauth2/token",
                          data={"grant_type": "client_credentials"}, auth=(client_id, "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_an_mo_retried_with_the_same_idempotency_key_is_stored_once(network, shared_tenant):  # type: ignore[no-untyped-def]
    thing = active_thing(shared_tenant)
    body = {"imsi": thing["imsi"], "text": "retry me"}
    first = network.post("/v1/network/sms", json=body, headers={"Idempotency-Key": "mo-1"})
    again = network.post("/v1/network/sms", json=body, headers={"Idempotency-Key": "mo-1"})
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    listed = shared_tenant.admin.get(f"/v1/things/{thing['id']}/sms",
                                     params={"direction": "MO"}).json()["items"]
    assert [m["text"] for m in listed].count("retry me") == 1
