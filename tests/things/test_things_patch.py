"""PATCH /v1/things/{id}: fields, validation (400, never 422), ETags and tenancy."""

from __future__ import annotations

import pytest
from thingkit import each, events_of, problem, snapshot


def test_rename(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    response = tenant.admin.patch(f"/v1/things/{thing_id}", json={"name": "pump 7"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "pump 7"
    assert snapshot(tenant.admin, thing_id)[0]["name"] == "pump 7"
    assert events_of(tenant.admin, thing_id) == []


def test_tags_replace_the_whole_set(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    first = client.patch(f"/v1/things/{thing_id}", json={"tags": ["zone:north", "pump", "v1.2"]})
    assert first.status_code == 200, first.text
    assert first.json()["tags"] == ["pump", "v1.2", "zone:north"]
    second = client.patch(f"/v1/things/{thing_id}", json={"tags": ["meter", "pump", "meter"]})
    assert second.json()["tags"] == ["meter", "pump"]
    assert snapshot(client, thing_id)[0]["tags"] == ["meter", "pump"]
    cleared = client.patch(f"/v1/things/{thing_id}", json={"tags": []})
    assert cleared.json()["tags"] == []
    assert client.get("/v1/things", params={"tag": "pump"}).json()["items"] == []


def test_tags_read_back_in_code_point_order_everywhere(tenant) -> None:
    # The reads take a Thing's tags from the database in no particular order and sort them by
    # code point, as the PATCH answer's model does; a linguistic collation (en_US) would put
    # "alpha" before "Zeta". (test_document_json holds the sort itself on any order.)
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    tags = ["alpha", "Zeta", "_x", "-y", "9.0", "b:1", "B:1"]
    expected = sorted(tags)
    patched = client.patch(f"/v1/things/{thing_id}", json={"tags": tags})
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == expected == ["-y", "9.0", "B:1", "Zeta", "_x", "alpha", "b:1"]
    one, etag = snapshot(client, thing_id)
    assert one["tags"] == expected and etag == patched.headers["etag"]
    [listed] = [t for t in client.get("/v1/things", params={"limit": 1000}).json()["items"]
                if t["id"] == thing_id]
    assert listed == one
    untagged = tenant.things(1)[0]["id"]
    assert snapshot(client, untagged)[0]["tags"] == []


def test_patch_without_tags_keeps_them(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    client.patch(f"/v1/things/{thing_id}", json={"tags": ["keep"]})
    assert client.patch(f"/v1/things/{thing_id}", json={"name": "x"}).json()["tags"] == ["keep"]


def test_tag_format_is_validated_naming_the_tag(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    before = snapshot(tenant.admin, thing_id)

    def check(bad: str) -> None:
        response = tenant.admin.patch(f"/v1/things/{thing_id}", json={"tags": ["fine", bad]})
        body = problem(response, 400, "validation_error")
        (error,) = body["errors"]
        assert error["field"] == "tags.1"
        assert repr(bad) in error["message"]
        assert repr(bad) in body["detail"]

    each([("has space",), ("",), ("ünïcode",), ("x" * 65,), ("semi;colon",), ("a/b",)], check)
    assert snapshot(tenant.admin, thing_id) == before


def test_at_most_fifty_tags(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    ok = tenant.admin.patch(f"/v1/things/{thing_id}", json={"tags": [f"t{i}" for i in range(50)]})
    assert ok.status_code == 200 and len(ok.json()["tags"]) == 50
    body = problem(tenant.admin.patch(f"/v1/things/{thing_id}",
                                      json={"tags": [f"t{i}" for i in range(51)]}),
                   400, "validation_error")
    assert body["errors"][0]["field"] == "tags"


def test_services_partial_update(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    assert snapshot(client, thing_id)[0]["services"] == {"data": True, "sms": True}
    data_off = client.patch(f"/v1/things/{thing_id}", json={"services": {"data": False}})
    assert data_off.status_code == 200, data_off.text
    assert data_off.json()["services"] == {"data": False, "sms": True}
    sms_off = client.patch(f"/v1/things/{thing_id}", json={"services": {"sms": False}})
    assert sms_off.json()["services"] == {"data": False, "sms": False}
    unchanged = client.patch(f"/v1/things/{thing_id}", json={"services": {}})
    assert unchanged.json()["services"] == {"data": False, "sms": False}
    both_on = client.patch(f"/v1/things/{thing_id}", json={"services": {"data": True, "sms": True}})
    assert both_on.json()["services"] == {"data": True, "sms": True}
    assert snapshot(client, thing_id)[0]["services"] == {"data": True, "sms": True}


def test_imei_lock_toggles(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    assert snapshot(client, thing_id)[0]["imei_lock"] is False
    assert client.patch(f"/v1/things/{thing_id}", json={"imei_lock": True}).json()["imei_lock"]
    assert snapshot(client, thing_id)[0]["imei_lock"] is True
    assert not client.patch(f"/v1/things/{thing_id}", json={"imei_lock": False}).json()["imei_lock"]
    assert snapshot(client, thing_id)[0]["imei_lock"] is False


def test_several_fields_at_once(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    response = tenant.admin.patch(f"/v1/things/{thing_id}", json={
        "name": "all", "state": "ACTIVE", "tags": ["a"], "services": {"sms": False},
        "imei_lock": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["state"], body["tags"], body["services"], body["imei_lock"]) == (
        "all", "ACTIVE", ["a"], {"data": True, "sms": False}, True)
    assert snapshot(tenant.admin, thing_id)[0] == body


def test_empty_and_unchanged_patches_change_nothing(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    client.patch(f"/v1/things/{thing_id}", json={"name": "same", "tags": ["t"]})
    before = snapshot(client, thing_id)
    for body in ({}, {"name": "same"}, {"tags": ["t"]}, {"services": {"data": True}},
                 {"imei_lock": False}, {"state": "PROVISIONED"},
                 {"things_group_id": before[0]["things_group_id"]}):
        response = client.patch(f"/v1/things/{thing_id}", json=body)
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == before[1], body
        assert snapshot(client, thing_id) == before, body


def test_unknown_field_is_named(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    before = snapshot(tenant.admin, thing_id)
    body = problem(tenant.admin.patch(f"/v1/things/{thing_id}",
                                      json={"name": "x", "msisdn": "31600000000"}),
                   400, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["msisdn"]
    assert "msisdn" in body["detail"]
    nested = problem(tenant.admin.patch(f"/v1/things/{thing_id}",
                                        json={"services": {"voice": True}}),
                     400, "validation_error")
    assert [e["field"] for e in nested["errors"]] == ["services.voice"]
    assert snapshot(tenant.admin, thing_id) == before


def test_explicit_null_is_refused(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    before = snapshot(tenant.admin, thing_id)

    def check(field: str) -> None:
        outer, _, inner = field.partition(".")
        payload = {outer: {inner: None}} if inner else {outer: None}
        body = problem(tenant.admin.patch(f"/v1/things/{thing_id}", json=payload),
                       400, "validation_error")
        assert [e["field"] for e in body["errors"]] == [field]

    each([(f,) for f in ("name", "state", "things_group_id", "tags", "services", "imei_lock",
                         "services.data", "services.sms")], check)
    assert snapshot(tenant.admin, thing_id) == before


WRONG_TYPES = [  # (field, value, the field the error names, how the value is shown)
    ("name", 42, "name", "42"),
    ("name", ["a"], "name", "['a']"),
    ("name", "x" * 201, "name", "xxxxxxxxxx"),
    ("state", "FROZEN", "state", "'FROZEN'"),
    ("state", "active", "state", "'active'"),
    ("state", 1, "state", "1"),
    ("tags", "pump", "tags", "'pump'"),
    ("tags", ["ok", 1], "tags.1", "1"),
    ("tags", {"a": 1}, "tags", "{'a': 1}"),
    ("services", True, "services", "True"),
    ("services.data", "no", "services.data", "'no'"),
    ("services.sms", 0, "services.sms", "0"),
    ("imei_lock", "yes", "imei_lock", "'yes'"),
    ("imei_lock", "true", "imei_lock", "'true'"),
    ("imei_lock", 1, "imei_lock", "1"),
    ("things_group_id", 5, "things_group_id", "5"),
    ("things_group_id", "", "things_group_id", "''"),
]


def test_wrong_types_name_field_and_value(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    before = snapshot(tenant.admin, thing_id)

    def check(field: str, value: object, bad_field: str, shown: str) -> None:
        outer, _, inner = field.partition(".")
        payload = {outer: {inner: value}} if inner else {outer: value}
        body = problem(tenant.admin.patch(f"/v1/things/{thing_id}", json=payload),
                       400, "validation_error")
        assert [e["field"] for e in body["errors"]] == [bad_field], body
        assert shown in body["errors"][0]["message"], body
        assert shown in body["detail"], body

    each(WRONG_TYPES, check)
    assert snapshot(tenant.admin, thing_id) == before


def test_malformed_bodies_are_400(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    before = snapshot(tenant.admin, thing_id)

    def raw(content: bytes) -> None:
        problem(tenant.admin.patch(f"/v1/things/{thing_id}", content=content,
                                   headers={"content-type": "application/json"}),
                400, "validation_error")

    def not_an_object(payload: object) -> None:
        problem(tenant.admin.patch(f"/v1/things/{thing_id}", json=payload),
                400, "validation_error")

    each([(b"{",), (b"name=x",), (b"{'name': 'x'}",), (b'{"name": "x",}',), (b"",)], raw)
    each([([],), ("name",), (7,), (None,)], not_an_object)
    assert snapshot(tenant.admin, thing_id) == before


def test_validation_never_answers_422(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    for payload in ({"state": None, "name": 1, "tags": [None], "bogus": 1},
                    {"services": {"data": "maybe", "x": 1}}):
        body = problem(tenant.admin.patch(f"/v1/things/{thing_id}", json=payload),
                       400, "validation_error")
        assert len(body["errors"]) >= 2, body


# --- ETag / If-Match -------------------------------------------------------------------------

def test_etag_is_strong_and_tracks_the_representation(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    first = client.get(f"/v1/things/{thing_id}")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert client.get(f"/v1/things/{thing_id}").headers["etag"] == etag
    patched = client.patch(f"/v1/things/{thing_id}", json={"name": "n"})
    assert patched.headers["etag"] not in (None, etag)
    assert client.get(f"/v1/things/{thing_id}").headers["etag"] == patched.headers["etag"]


def test_matching_if_match_applies_the_patch(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]
    _, etag = snapshot(client, thing_id)
    response = client.patch(f"/v1/things/{thing_id}", json={"name": "guarded"},
                            headers={"If-Match": etag})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "guarded"
    assert response.headers["etag"] != etag
    assert snapshot(client, thing_id) == (response.json(), response.headers["etag"])
    listed = client.patch(f"/v1/things/{thing_id}", json={"name": "listed"},
                          headers={"If-Match": f'"nope", {response.headers["etag"]}'})
    assert listed.status_code == 200, listed.text
    star = client.patch(f"/v1/things/{thing_id}", json={"name": "any"}, headers={"If-Match": "*"})
    assert star.status_code == 200, star.text


def test_stale_if_match_is_412_and_changes_nothing(tenant) -> None:
    client = tenant.admin
    thing_id = tenant.things(1)[0]["id"]

    def check(patch: dict) -> None:
        _, stale = snapshot(client, thing_id)
        assert client.patch(f"/v1/things/{thing_id}",
                            json={"name": f"someone else {stale}"}).status_code == 200
        current = snapshot(client, thing_id)
        history = client.get(f"/v1/things/{thing_id}/state-history").json()
        body = problem(client.patch(f"/v1/things/{thing_id}", json=patch,
                                    headers={"If-Match": stale}), 412, "etag_mismatch")
        assert stale in body["detail"]
        assert snapshot(client, thing_id) == current
        assert client.get(f"/v1/things/{thing_id}/state-history").json() == history

    each([({"name": "late"},), ({"state": "ACTIVE"},), ({"tags": ["x"]},),
          ({"things_group_id": "grp_00000000000000000000000000000"},)], check)
    assert events_of(client, thing_id) == []


def test_weak_etag_does_not_match(tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    _, etag = snapshot(tenant.admin, thing_id)
    problem(tenant.admin.patch(f"/v1/things/{thing_id}", json={"name": "w"},
                               headers={"If-Match": f"W/{etag}"}), 412, "etag_mismatch")


# --- tenancy and roles -----------------------------------------------------------------------

def test_other_accounts_thing_is_404_and_untouched(tenant, other_tenant) -> None:
    thing_id = tenant.things(1)[0]["id"]
    before = snapshot(tenant.admin, thing_id)
    problem(other_tenant.admin.get(f"/v1/things/{thing_id}"), 404, "not_found")
    problem(other_tenant.admin.patch(f"/v1/things/{thing_id}", json={"state": "ACTIVE"}),
            404, "not_found")
    missing = problem(tenant.admin.get("/v1/things/thg_00000000000000000000000000000"),
                      404, "not_found")
    mine = problem(other_tenant.admin.get(f"/v1/things/{thing_id}"), 404, "not_found")
    assert missing.keys() == mine.keys()
    assert snapshot(tenant.admin, thing_id) == before


@pytest.mark.parametrize("role", ["viewer", "billing"])
def test_readers_cannot_patch(tenant, role: str) -> None:
    thing_id = tenant.things(1)[0]["id"]
    reader = tenant.client(role)
    assert reader.get(f"/v1/things/{thing_id}").status_code == 200
    problem(reader.patch(f"/v1/things/{thing_id}", json={"name": "x"}), 403, "forbidden")
    assert snapshot(tenant.admin, thing_id)[0]["name"] == ""
