"""GET /v1/things: filters, bad query values, cursor paging and its stability; lookup."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from thingkit import each, problem, set_thing

from simplane.core.http import etag_of, json_bytes
from simplane.models import Thing
from simplane.things import service


def _ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["items"]]


def _walk(client: httpx.Client, params: dict,
          between_pages: Callable[[], None] | None = None) -> tuple[list[str], int]:
    """Follow next_cursor to the end; the ids in order and the number of pages."""
    seen: list[str] = []
    params = dict(params)
    pages = 0
    while True:
        response = client.get("/v1/things", params=params)
        seen += _ids(response)
        pages += 1
        cursor = response.json()["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            return seen, pages
        link = response.headers["link"]
        assert link.endswith('>; rel="next"') and link.startswith("<http")
        query = parse_qs(urlsplit(link[1:link.index(">")]).query)
        assert query["cursor"] == [cursor]
        for key, value in params.items():
            if key != "cursor":
                assert query[key] == (value if isinstance(value, list) else [str(value)])
        params["cursor"] = cursor
        if between_pages:
            between_pages()


def _iccid_order(tenant, iccids: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    return [tenant.admin.get("/v1/things", params={"iccid": i}).json()["items"][0]["id"]
            for i in iccids]


@pytest.fixture
def fleet(tenant, other_tenant) -> dict:  # type: ignore[no-untyped-def]
    """Four Things in distinct states, tags, identifiers and connections; and decoys elsewhere."""
    client = tenant.admin
    a, b, c, d = tenant.things(4)
    group = client.post("/v1/things-groups", json={"name": "field"}).json()
    for thing, patch in ((a, {"state": "ACTIVE", "tags": ["x", "y"]}),
                         (b, {"state": "ACTIVE", "tags": ["x"], "things_group_id": group["id"]}),
                         (c, {"state": "RETIRED", "tags": ["y"]})):
        assert client.patch(f"/v1/things/{thing['id']}", json=patch).status_code == 200
    assert client.patch(f"/v1/things/{b['id']}", json={"state": "SUSPENDED"}).status_code == 200
    set_thing(tenant, a["id"], imei="490154203237518", ip_address="100.64.0.1",
              connection_status="ATTACHED")
    set_thing(tenant, b["id"], imei="356938035643809", ip_address="100.64.0.2",
              connection_status="DETACHED")
    # Another account with matching tags, state and addresses must never show up.
    decoy = other_tenant.things(1)[0]
    other_tenant.admin.patch(f"/v1/things/{decoy['id']}",
                             json={"state": "ACTIVE", "tags": ["x", "y"]})
    set_thing(other_tenant, decoy["id"], imei="490154203237518", ip_address="100.64.0.1",
              connection_status="ATTACHED")
    return {"a": a, "b": b, "c": c, "d": d, "group": group["id"],
            "default_group": a["things_group_id"], "decoy": decoy}


FILTER_CASES = [
    ({}, "abcd"),
    ({"state": "ACTIVE"}, "a"),
    ({"state": "SUSPENDED"}, "b"),
    ({"state": "RETIRED"}, "c"),
    ({"state": "PROVISIONED"}, "d"),
    ({"tag": "x"}, "ab"),
    ({"tag": "y"}, "ac"),
    ({"tag": ["x", "y"]}, "a"),
    ({"tag": ["x", "x"]}, "ab"),
    ({"tag": ["x", "nope"]}, ""),
    ({"imei": "490154203237518"}, "a"),
    ({"ip_address": "100.64.0.2"}, "b"),
    ({"ip_address": "100.64.0.9"}, ""),
    ({"connection_status": "ATTACHED"}, "a"),
    ({"connection_status": "DETACHED"}, "b"),
    ({"connection_status": "NEVER"}, "cd"),
    ({"tag": "x", "state": "SUSPENDED"}, "b"),
    ({"tag": "y", "connection_status": "NEVER"}, "c"),
]


def test_filters(tenant, fleet: dict) -> None:
    # One fleet for all cases (building it is most of the cost); every mismatch is reported.
    wrong = []
    for params, expected in FILTER_CASES:
        got = _ids(tenant.admin.get("/v1/things", params=params))
        want = [fleet[k]["id"] for k in expected]
        if got != want:
            names = {fleet[k]["id"]: k for k in "abcd"}
            wrong.append(f"{params}: got {[names.get(i, i) for i in got]}, want {list(expected)}")
    assert not wrong, "\n".join(wrong)


def test_filter_by_group_and_sim_identifiers(tenant, other_tenant, fleet: dict) -> None:
    client = tenant.admin
    assert _ids(client.get("/v1/things", params={"things_group_id": fleet["group"]})) == [
        fleet["b"]["id"]]
    assert _ids(client.get("/v1/things", params={"things_group_id": fleet["default_group"]})) == [
        fleet[k]["id"] for k in "acd"]
    other_group = fleet["decoy"]["things_group_id"]
    assert _ids(client.get("/v1/things", params={"things_group_id": other_group})) == []
    for key in ("iccid", "imsi"):
        assert _ids(client.get("/v1/things", params={key: fleet["c"][key]})) == [fleet["c"]["id"]]
        assert _ids(client.get("/v1/things", params={key: fleet["decoy"][key]})) == []


def test_bad_filter_values_are_400_naming_the_value(tenant) -> None:
    tenant.ship(1)

    def check(name: str, value: str) -> None:
        body = problem(tenant.admin.get("/v1/things", params={name: value}),
                       400, "validation_error")
        assert [e["field"] for e in body["errors"]] == [name], body
        assert repr(value)[1:-1] in body["detail"], body

    each([("state", "FOO"), ("state", "active"), ("connection_status", "UP"),
          ("ip_address", "999.1.1.1"), ("ip_address", "10.0.0"), ("iccid", "1234"),
          ("iccid", "89310000000000000x0"), ("imsi", "abc"), ("imei", "12"), ("limit", "0"),
          ("limit", "1001"), ("limit", "-5"), ("limit", "ten"), ("cursor", "garbage"),
          ("cursor", "eyJhZnRlciI6IDV9"),  # {"after": 5}
          ("tag", "has space"), ("tag", "x" * 65), ("tag", "ok\n")],
         check)


def test_limit_bounds_are_inclusive(tenant) -> None:
    tenant.ship(2)
    assert len(_ids(tenant.admin.get("/v1/things", params={"limit": 1}))) == 1
    assert len(_ids(tenant.admin.get("/v1/things", params={"limit": 1000}))) == 2


def test_paging_walks_every_thing_once_in_creation_order(tenant) -> None:
    first = tenant.ship(4)
    second = tenant.ship(3)
    expected = _iccid_order(tenant, first + second)
    page = tenant.admin.get("/v1/things", params={"limit": 3})
    assert len(page.json()["items"]) == 3 and page.json()["next_cursor"]
    seen, pages = _walk(tenant.admin, {"limit": 3})
    assert seen == expected
    assert pages == 3
    created = [tenant.admin.get(f"/v1/things/{i}").json()["created_at"] for i in seen]
    assert created == sorted(created)
    exact, pages = _walk(tenant.admin, {"limit": 7})
    assert (exact, pages) == (expected, 1)


def test_default_page_is_one_hundred(tenant) -> None:
    tenant.ship(101)
    page = tenant.admin.get("/v1/things")
    assert len(page.json()["items"]) == 100
    assert page.json()["next_cursor"] and 'rel="next"' in page.headers["link"]


def test_paging_keeps_filters_in_the_next_link(tenant) -> None:
    things = tenant.things(5)
    for thing in things[::2]:
        tenant.admin.patch(f"/v1/things/{thing['id']}", json={"tags": ["even", "t"]})
    seen, pages = _walk(tenant.admin, {"limit": 1, "tag": ["even", "t"], "state": "PROVISIONED"})
    assert seen == [t["id"] for t in things[::2]]
    assert pages == 3


def test_paging_is_stable_while_things_are_shipped(tenant) -> None:
    originals = tenant.ship(6)
    added: list[str] = []

    def ship_more() -> None:
        if len(added) < 6:  # three times; unbounded shipping at the page rate never ends
            added.extend(tenant.ship(2))

    seen, _ = _walk(tenant.admin, {"limit": 2}, between_pages=ship_more)
    assert len(seen) == len(set(seen)), "an item was repeated"
    original_ids = _iccid_order(tenant, originals)
    assert [i for i in seen if i in original_ids] == original_ids, "an item was skipped"
    # Things created after the walk started come after every older one, in creation order.
    assert seen == original_ids + _iccid_order(tenant, added)


def test_paging_is_stable_while_things_change_state(tenant) -> None:
    things = tenant.things(5)
    walked: list[str] = []
    params: dict = {"limit": 2, "state": "PROVISIONED"}
    pending = iter(things[::-1])
    while True:
        response = tenant.admin.get("/v1/things", params=params)
        walked += _ids(response)
        if not response.json()["next_cursor"]:
            break
        params["cursor"] = response.json()["next_cursor"]
        # Activating one not yet seen removes it from the filter: it must vanish, not shift.
        victim = next(pending)
        tenant.admin.patch(f"/v1/things/{victim['id']}", json={"state": "ACTIVE"})
    assert len(walked) == len(set(walked))
    assert walked == sorted(walked)
    activated = {t["id"] for t in things if tenant.admin.get(
        f"/v1/things/{t['id']}").json()["state"] == "ACTIVE"}
    assert set(walked) | activated == {t["id"] for t in things}


def test_list_and_lookup_are_scoped_to_the_account(tenant, other_tenant) -> None:
    mine = tenant.things(2)
    theirs = other_tenant.things(1)
    assert _ids(tenant.admin.get("/v1/things")) == [t["id"] for t in mine]
    assert _ids(other_tenant.admin.get("/v1/things")) == [t["id"] for t in theirs]


# --- lookup ----------------------------------------------------------------------------------

def test_lookup_redirects_to_the_thing(tenant) -> None:
    first, second = tenant.things(2)
    set_thing(tenant, first["id"], imei="490154203237518", ip_address="100.64.7.7")
    set_thing(tenant, second["id"], imei="356938035643809", ip_address="100.64.7.8")

    def check(key: str, value: str) -> None:
        response = tenant.admin.get("/v1/things/lookup", params={key: value})
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.endswith(f"/v1/things/{first['id']}")
        followed = tenant.admin.get(location)
        assert followed.status_code == 200
        assert followed.json()["id"] == first["id"]

    each([("iccid", first["iccid"]), ("imsi", first["imsi"]), ("imei", "490154203237518"),
          ("ip_address", "100.64.7.7")], check)


def test_lookup_without_a_match_is_404(tenant) -> None:
    tenant.ship(1)

    def check(key: str, value: str) -> None:
        problem(tenant.admin.get("/v1/things/lookup", params={key: value}), 404, "not_found")

    each([("iccid", "8931000000000000000"), ("imsi", "204049999999999"),
          ("imei", "490154203237518"), ("ip_address", "100.64.9.9")], check)


def test_lookup_of_another_accounts_thing_is_404(tenant, other_tenant) -> None:
    theirs = other_tenant.things(1)[0]
    set_thing(other_tenant, theirs["id"], ip_address="100.64.8.8")
    tenant.ship(1)
    for key, value in (("iccid", theirs["iccid"]), ("imsi", theirs["imsi"]),
                       ("ip_address", "100.64.8.8")):
        problem(tenant.admin.get("/v1/things/lookup", params={key: value}), 404, "not_found")
    assert other_tenant.admin.get("/v1/things/lookup",
                                  params={"iccid": theirs["iccid"]}).status_code == 302


def test_lookup_needs_exactly_one_key(tenant) -> None:
    def check(params: dict) -> None:
        body = problem(tenant.admin.get("/v1/things/lookup", params=params),
                       400, "validation_error")
        assert {e["field"] for e in body["errors"]} == (set(params) or {"iccid"})

    each([({},), ({"iccid": "8931000000000000000", "imsi": "204049999999999"},),
          ({"imei": "490154203237518", "ip_address": "100.64.0.1"},)], check)


def test_lookup_validates_the_value(tenant) -> None:
    body = problem(tenant.admin.get("/v1/things/lookup", params={"ip_address": "999.1.1.1"}),
                   400, "validation_error")
    assert "999.1.1.1" in body["detail"]


def test_reads_answer_the_bytes_of_the_thing_models(tenant, fleet: dict) -> None:
    """The list and the single read serialise rows without building ThingOut models: their
    bytes, and so the ETags that PATCH's If-Match compares, must be the models' own."""
    client = tenant.admin
    set_thing(tenant, fleet["a"]["id"], service_sms=False, imei_lock=True,
              connection_since=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
              connection_rat="LTE", connection_country="DE", connection_operator="26201",
              connection_session_id="acct-1")
    set_thing(tenant, fleet["b"]["id"], service_data=False, ip_locked=True,
              name='a "quoted" n\u00e4me \\ <&>')
    with tenant.backend.database.transaction() as session:
        things = session.scalars(select(Thing).where(Thing.account_id == tenant.account_id)
                                 .order_by(Thing.id)).all()
        models = service.views(session, tenant.account_id, things)
    assert len(models) == 4
    page = client.get("/v1/things")
    assert page.content == (b'{"items":[' + b",".join(json_bytes(m) for m in models)
                            + b'],"next_cursor":null}')
    assert client.get("/v1/things", params={"limit": 3}).content.startswith(
        b'{"items":[' + b",".join(json_bytes(m) for m in models[:3]) + b'],"next_cursor":"')
    for model in models:
        single = client.get(f"/v1/things/{model.id}")
        assert single.content == json_bytes(model)
        assert single.headers["etag"] == etag_of(model)
