"""POST /v1/things/{id}/sms through the API: segment counts at the boundaries, every refusal a
400 problem naming the field (never 422), the sms_not_allowed preconditions, listing and
filters, tenancy and roles."""

from __future__ import annotations

import base64

import httpx
import pytest
from sms_helpers import active_thing, send, sms_events

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    return body


def assert_invalid(response: httpx.Response, field: str, *words: str) -> dict:
    body = assert_problem(response, 400, "validation_error")
    assert field in [e["field"] for e in body["errors"]], body
    for word in words:
        assert word in body["detail"], body
    return body


def b64(size: int) -> str:
    return base64.b64encode(bytes(range(256)) * (size // 256) + bytes(range(size % 256))).decode()


@pytest.fixture(scope="module")
def thing(shared_tenant) -> dict:
    return active_thing(shared_tenant)


@pytest.mark.parametrize(("body", "encoding", "segments"), [
    ({"text": "a" * 160}, "GSM7", 1),
    ({"text": "a" * 161}, "GSM7", 2),
    ({"text": "a" * 306}, "GSM7", 2),
    ({"text": "a" * 307}, "GSM7", 3),
    ({"text": "a" * 1530}, "GSM7", 10),
    ({"text": "€" * 80}, "GSM7", 1),
    ({"text": "€" * 81}, "GSM7", 2),
    ({"text": "a" * 152 + "€" + "a" * 152}, "GSM7", 3),
    ({"text": "€" * 760}, "GSM7", 10),
    ({"text": "Ж" * 70}, "UCS2", 1),
    ({"text": "Ж" * 71}, "UCS2", 2),
    ({"text": "Ж" * 670}, "UCS2", 10),
    ({"text": "a" * 159 + "ł"}, "UCS2", 3),
    ({"text": "a" * 10, "encoding": "UCS2"}, "UCS2", 1),
    ({"data_base64": b64(140)}, "BINARY", 1),
    ({"data_base64": b64(141), "encoding": "BINARY"}, "BINARY", 2),
    ({"data_base64": b64(1340)}, "BINARY", 10),
])
def test_segments_and_encoding_through_the_api(shared_tenant, thing, body, encoding,
                                               segments) -> None:
    tenant = shared_tenant
    response = send(tenant.admin, thing["id"], **body)
    assert response.status_code == 202, response.text
    message = response.json()
    assert response.headers["Location"] == f"/v1/sms/{message['id']}"
    assert (message["encoding"], message["segments"]) == (encoding, segments)
    assert (message["direction"], message["status"], message["thing_id"]) == (
        "MT", "QUEUED", thing["id"])
    assert message["validity_seconds"] == 86400
    assert message["sent_at"] is None and message["delivered_at"] is None
    stored = tenant.admin.get(response.headers["Location"])
    assert stored.status_code == 200 and stored.headers["ETag"]
    assert stored.json() == message
    content = "text" if "text" in body else "data_base64"
    assert stored.json()[content] == body[content]


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"text": "a" * 1531}, "text", ("11 segments", "1530")),
    ({"text": "€" * 766}, "text", ("11 segments",)),
    ({"text": "a" * 152 + "€" + "a" * 1376}, "text", ("11 segments",)),
    ({"text": "€" * 761}, "text", ("11 segments",)),
    ({"text": "Ж" * 671}, "text", ("11 segments", "670")),
    ({"data_base64": b64(1341)}, "data_base64", ("11 segments", "1340")),
    ({"text": "status: 21°C", "encoding": "GSM7"}, "text", ("'°'", "U+00B0", "position 10")),
    ({"data_base64": "not base64!"}, "data_base64", ("not valid base64",)),
    ({"data_base64": "AAE"}, "data_base64", ("not valid base64",)),
    ({"text": "hello", "data_base64": "AAE="}, "body", ("text", "data_base64")),
    ({}, "body", ("text", "data_base64")),
    ({"text": ""}, "text", ("empty",)),
    ({"text": "ab\u0000c"}, "text", ("U+0000", "text")),
    ({"text": "hi", "encoding": "BINARY"}, "body", ("BINARY",)),
    ({"data_base64": "AAE=", "encoding": "GSM7"}, "body", ("BINARY",)),
    ({"text": "hi", "encoding": "UTF8"}, "encoding", ()),
    ({"text": "hi", "validity_seconds": 59}, "validity_seconds", ("60",)),
    ({"text": "hi", "validity_seconds": 604801}, "validity_seconds", ("604800",)),
    ({"text": "hi", "validity_seconds": "a day"}, "validity_seconds", ()),
    ({"text": "hi", "msisdn": "31612345678"}, "msisdn", ("unknown field",)),
])
def test_invalid_messages_answer_400_naming_the_problem(shared_tenant, thing, body, field,
                                                        words) -> None:
    assert_invalid(send(shared_tenant.admin, thing["id"], **body), field, *words)


def test_nothing_is_stored_for_an_invalid_message(tenant) -> None:
    thing = active_thing(tenant)
    assert send(tenant.admin, thing["id"], text="a" * 1531).status_code == 400
    assert tenant.admin.get(f"/v1/things/{thing['id']}/sms").json()["items"] == []


def test_malformed_json_is_400(shared_tenant, thing) -> None:
    response = shared_tenant.admin.post(f"/v1/things/{thing['id']}/sms", content=b'{"text": ',
                                        headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text


def test_validity_bounds_are_inclusive(shared_tenant, thing) -> None:
    for seconds in (60, 604800):
        response = send(shared_tenant.admin, thing["id"], text="hi", validity_seconds=seconds)
        assert response.status_code == 202, response.text
        assert response.json()["validity_seconds"] == seconds


@pytest.mark.parametrize("patch", [{}, {"state": "SUSPENDED"}, {"services": {"sms": False}}])
def test_sms_needs_an_active_thing_with_sms_enabled(shared_tenant, patch) -> None:
    tenant = shared_tenant
    if patch:
        thing = active_thing(tenant)
        assert tenant.admin.patch(f"/v1/things/{thing['id']}", json=patch).status_code == 200
    else:
        thing = tenant.things(1)[0]  # PROVISIONED
    response = send(tenant.admin, thing["id"], text="hello")
    body = assert_problem(response, 412, "sms_not_allowed")
    assert thing["id"] in body["detail"]
    assert tenant.admin.get("/v1/sms", params={"thing_id": thing["id"]}).json()["items"] == []
    assert tenant.admin.get(f"/v1/things/{thing['id']}/sms").json()["items"] == []
    events = tenant.admin.get("/v1/events", params={"thing_id": thing["id"],
                                                    "type": "sms.status_changed"})
    assert events.json()["items"] == []


def test_the_first_event_of_a_message_is_its_queueing(shared_tenant, thing) -> None:
    message = send(shared_tenant.admin, thing["id"], text="hi").json()
    [event] = sms_events(shared_tenant.admin, thing["id"], message["id"])
    assert event["data"]["from"] is None and event["data"]["to"] == "QUEUED"
    assert event["data"]["direction"] == "MT"


def test_lists_filter_and_page(tenant) -> None:
    first, second = active_thing(tenant), active_thing(tenant)
    sent = [send(tenant.admin, first["id"], text=f"m{i}").json()["id"] for i in range(3)]
    other = send(tenant.admin, second["id"], text="x").json()["id"]

    everything = tenant.admin.get("/v1/sms", params={"limit": 1000}).json()
    assert [m["id"] for m in everything["items"]] == sent + [other]
    by_thing = tenant.admin.get("/v1/sms", params={"thing_id": first["id"]}).json()["items"]
    assert [m["id"] for m in by_thing] == sent
    nested = tenant.admin.get(f"/v1/things/{first['id']}/sms").json()["items"]
    assert [m["id"] for m in nested] == sent
    queued = tenant.admin.get("/v1/sms", params={"status": "QUEUED", "direction": "MT"})
    assert [m["id"] for m in queued.json()["items"]] == sent + [other]
    for params in ({"direction": "MO"}, {"status": "DELIVERED"}):
        assert tenant.admin.get("/v1/sms", params=params).json()["items"] == []
        assert tenant.admin.get(f"/v1/things/{first['id']}/sms",
                                params=params).json()["items"] == []

    page = tenant.admin.get("/v1/sms", params={"limit": 2})
    assert [m["id"] for m in page.json()["items"]] == sent[:2]
    assert 'rel="next"' in page.headers["Link"]
    rest = tenant.admin.get("/v1/sms", params={"limit": 2, "cursor": page.json()["next_cursor"]})
    assert [m["id"] for m in rest.json()["items"]] == [sent[2], other]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize("params", [{"direction": "UP"}, {"status": "SENDING"}, {"limit": 0},
                                    {"limit": 1001}])
def test_bad_list_parameters_are_400(shared_tenant, params) -> None:
    assert shared_tenant.admin.get("/v1/sms", params=params).status_code == 400


def test_another_accounts_messages_and_things_are_404(tenant, other_tenant) -> None:
    thing = active_thing(tenant)
    message = send(tenant.admin, thing["id"], text="private").json()
    intruder = other_tenant.admin
    assert_problem(intruder.get(f"/v1/sms/{message['id']}"), 404, "not_found")
    assert_problem(intruder.get(f"/v1/things/{thing['id']}/sms"), 404, "not_found")
    assert_problem(send(intruder, thing["id"], text="hi"), 404, "not_found")
    assert intruder.get("/v1/sms", params={"thing_id": thing["id"]}).json()["items"] == []
    assert message["id"] not in [m["id"] for m in intruder.get("/v1/sms").json()["items"]]
    # Exactly as an id that does not exist.
    assert_problem(intruder.get("/v1/sms/sms_0000000000000000000000000000"), 404, "not_found")
    assert [m["id"] for m in tenant.admin.get(f"/v1/things/{thing['id']}/sms").json()["items"]] \
        == [message["id"]]


def test_roles(tenant) -> None:
    thing = active_thing(tenant)
    manager, viewer, billing = (tenant.client(r) for r in ("manager", "viewer", "billing"))
    sent = send(manager, thing["id"], text="from the manager")
    assert sent.status_code == 202, sent.text
    sms_id = sent.json()["id"]

    for client in (viewer, billing):
        assert_problem(send(client, thing["id"], text="no"), 403, "forbidden")
    for path in ("/v1/sms", f"/v1/sms/{sms_id}", f"/v1/things/{thing['id']}/sms"):
        assert viewer.get(path).status_code == 200, path
        assert_problem(billing.get(path), 403, "forbidden")
    assert [m["id"] for m in viewer.get("/v1/sms").json()["items"]] == [sms_id]


def test_a_repeated_idempotency_key_sends_one_message(tenant) -> None:
    thing = active_thing(tenant)
    headers = {"Idempotency-Key": "sms-1"}
    # Sent back to back: the retry arrives as soon as the first answer has.
    first = tenant.admin.post(f"/v1/things/{thing['id']}/sms", json={"text": "once"},
                              headers=headers)
    again = tenant.admin.post(f"/v1/things/{thing['id']}/sms", json={"text": "once"},
                              headers=headers)
    assert (first.status_code, again.status_code) == (202, 202), again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.json() == first.json()
    other = tenant.admin.post(f"/v1/things/{thing['id']}/sms", json={"text": "twice"},
                              headers=headers)
    assert_problem(other, 412, "idempotency_key_reused")
    listed = tenant.admin.get(f"/v1/things/{thing['id']}/sms").json()["items"]
    assert [m["id"] for m in listed] == [first.json()["id"]]
    assert len(sms_events(tenant.admin, thing["id"], first.json()["id"])) == 1
