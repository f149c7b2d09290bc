"""Firewall rules (api.md §7): fields, ordering and renumbering, the 1,000-rule limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fwkit import add_rule, assert_bad_request, chain_ids, make_profile
from sqlalchemy import insert

from simplane.core.ids import new_id
from simplane.models import FirewallRule, utcnow


def test_rule_crud_and_defaults(account) -> None:
    client = account.admin
    profile = make_profile(client)
    created = client.post(f"/v1/ip-profiles/{profile['id']}/rules",
                          json={"chain": "INBOUND", "action": "ALLOW"})
    assert created.status_code == 201, created.text
    rule = created.json()
    assert created.headers["Location"] == f"/v1/ip-profiles/{profile['id']}/rules/{rule['id']}"
    assert rule["id"].startswith("rule_")
    assert {k: rule[k] for k in ("chain", "position", "action", "protocol", "remote_cidr",
                                 "ports", "description")} == {
        "chain": "INBOUND", "position": 1, "action": "ALLOW", "protocol": "ANY",
        "remote_cidr": "0.0.0.0/0", "ports": None, "description": ""}

    url = f"/v1/ip-profiles/{profile['id']}/rules/{rule['id']}"
    fetched = client.get(url)
    assert fetched.json() == rule
    assert fetched.headers["ETag"] == created.headers["ETag"]

    patched = client.patch(url, json={"action": "DENY", "protocol": "TCP", "ports": "1000-2000",
                                      "remote_cidr": "10.0.0.0/8", "description": "no dev ports"},
                           headers={"If-Match": fetched.headers["ETag"]})
    assert patched.status_code == 200, patched.text
    assert {k: patched.json()[k] for k in ("action", "protocol", "ports", "remote_cidr",
                                           "description", "position")} == {
        "action": "DENY", "protocol": "TCP", "ports": "1000-2000", "remote_cidr": "10.0.0.0/8",
        "description": "no dev ports", "position": 1}

    # null clears the ports; after that the protocol may become one without ports.
    cleared = client.patch(url, json={"ports": None, "protocol": "ICMP"})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["ports"] is None and cleared.json()["protocol"] == "ICMP"

    stale = client.delete(url, headers={"If-Match": fetched.headers["ETag"]})
    assert stale.status_code == 412 and stale.json()["code"] == "etag_mismatch"
    assert client.delete(url, headers={"If-Match": cleared.headers["ETag"]}).status_code == 204
    assert client.get(url).status_code == 404
    assert client.get(f"/v1/ip-profiles/{profile['id']}").json()["inbound"]["rules"] == []


def test_single_port_is_shown_as_one_port(account) -> None:
    profile = make_profile(account.admin)
    assert add_rule(account.admin, profile["id"], protocol="UDP", ports="53-53")["ports"] == "53"
    assert add_rule(account.admin, profile["id"], protocol="TCP", ports="65535")["ports"] == "65535"


def test_rule_changes_bump_the_profile(account) -> None:
    profile = make_profile(account.admin)
    url = f"/v1/ip-profiles/{profile['id']}"
    stamps = [profile["updated_at"]]
    rule = add_rule(account.admin, profile["id"])
    stamps.append(account.admin.get(url).json()["updated_at"])
    account.admin.patch(f"{url}/rules/{rule['id']}", json={"action": "ALLOW"})
    stamps.append(account.admin.get(url).json()["updated_at"])
    account.admin.delete(f"{url}/rules/{rule['id']}")
    stamps.append(account.admin.get(url).json()["updated_at"])
    assert stamps == sorted(stamps) and len(set(stamps)) == 4


def test_insert_at_a_position_shifts_the_rest(account) -> None:
    profile = make_profile(account.admin)
    pid = profile["id"]
    a, b, c = (add_rule(account.admin, pid)["id"] for _ in range(3))
    assert chain_ids(account.admin, pid, "INBOUND") == [a, b, c]
    d = add_rule(account.admin, pid, position=1)
    assert d["position"] == 1
    e = add_rule(account.admin, pid, position=3)
    f = add_rule(account.admin, pid, position=6)  # n+1: the end
    assert chain_ids(account.admin, pid, "INBOUND") == [d["id"], a, e["id"], b, c, f["id"]]
    # The other chain is untouched.
    out = add_rule(account.admin, pid, chain="OUTBOUND", position=1)
    assert out["position"] == 1
    assert chain_ids(account.admin, pid, "OUTBOUND") == [out["id"]]
    assert len(chain_ids(account.admin, pid, "INBOUND")) == 6


def test_a_position_beyond_the_end_is_refused(account) -> None:
    profile = make_profile(account.admin)
    pid = profile["id"]
    add_rule(account.admin, pid)
    assert_bad_request(account.admin.post(f"/v1/ip-profiles/{pid}/rules", json={
        "chain": "INBOUND", "action": "DENY", "position": 3}), "position", "3", "between 1 and 2")
    assert_bad_request(account.admin.post(f"/v1/ip-profiles/{pid}/rules", json={
        "chain": "INBOUND", "action": "DENY", "position": 0}), "position")
    assert len(chain_ids(account.admin, pid, "INBOUND")) == 1


def test_move_within_a_chain(account) -> None:
    pid = make_profile(account.admin)["id"]
    ids = [add_rule(account.admin, pid, description=str(i))["id"] for i in range(5)]

    def move(rule_id: str, position: int) -> None:
        response = account.admin.patch(f"/v1/ip-profiles/{pid}/rules/{rule_id}",
                                      json={"position": position})
        assert response.status_code == 200, response.text
        assert response.json()["position"] == position
        ids.remove(rule_id)
        ids.insert(position - 1, rule_id)
        assert chain_ids(account.admin, pid, "INBOUND") == ids

    move(ids[0], 4)   # down
    move(ids[4], 1)   # up to the top
    move(ids[2], 5)   # to the end
    move(ids[1], 1)
    move(ids[3], 3)   # no change at all
    beyond = account.admin.patch(f"/v1/ip-profiles/{pid}/rules/{ids[0]}", json={"position": 6})
    assert_bad_request(beyond, "position", "between 1 and 5")
    assert chain_ids(account.admin, pid, "INBOUND") == ids


def test_move_to_the_other_chain(account) -> None:
    pid = make_profile(account.admin)["id"]
    inbound = [add_rule(account.admin, pid)["id"] for _ in range(3)]
    outbound = [add_rule(account.admin, pid, chain="OUTBOUND")["id"] for _ in range(2)]

    moved = account.admin.patch(f"/v1/ip-profiles/{pid}/rules/{inbound[1]}",
                               json={"chain": "OUTBOUND", "position": 2})
    assert moved.status_code == 200, moved.text
    assert moved.json()["chain"] == "OUTBOUND" and moved.json()["position"] == 2
    assert chain_ids(account.admin, pid, "INBOUND") == [inbound[0], inbound[2]]
    assert chain_ids(account.admin, pid, "OUTBOUND") == [outbound[0], inbound[1], outbound[1]]

    appended = account.admin.patch(f"/v1/ip-profiles/{pid}/rules/{inbound[0]}",
                                  json={"chain": "OUTBOUND"})
    assert appended.json()["position"] == 4
    assert chain_ids(account.admin, pid, "INBOUND") == [inbound[2]]
    assert chain_ids(account.admin, pid, "OUTBOUND") == [outbound[0], inbound[1], outbound[1],
                                                        inbound[0]]


def test_delete_renumbers(account) -> None:
    pid = make_profile(account.admin)["id"]
    ids = [add_rule(account.admin, pid)["id"] for _ in range(4)]
    other = add_rule(account.admin, pid, chain="OUTBOUND")["id"]
    for victim in (ids[1], ids[2], ids[0]):
        assert account.admin.delete(f"/v1/ip-profiles/{pid}/rules/{victim}").status_code == 204
        ids.remove(victim)
        assert chain_ids(account.admin, pid, "INBOUND") == ids
    assert chain_ids(account.admin, pid, "OUTBOUND") == [other]


def test_renumbering_changes_the_etag_of_shifted_rules(account) -> None:
    pid = make_profile(account.admin)["id"]
    rule = add_rule(account.admin, pid)
    url = f"/v1/ip-profiles/{pid}/rules/{rule['id']}"
    etag = account.admin.get(url).headers["ETag"]
    add_rule(account.admin, pid, position=1)
    refused = account.admin.patch(url, json={"action": "ALLOW"}, headers={"If-Match": etag})
    assert refused.status_code == 412
    assert account.admin.get(url).json()["action"] == "DENY"


def test_list_orders_by_chain_then_position_and_pages(account) -> None:
    pid = make_profile(account.admin)["id"]
    out1 = add_rule(account.admin, pid, chain="OUTBOUND")["id"]
    in1 = add_rule(account.admin, pid)["id"]
    out0 = add_rule(account.admin, pid, chain="OUTBOUND", position=1)["id"]
    in0 = add_rule(account.admin, pid, position=1)["id"]
    in2 = add_rule(account.admin, pid)["id"]
    expected = [in0, in1, in2, out0, out1]
    everything = account.admin.get(f"/v1/ip-profiles/{pid}/rules").json()
    assert [r["id"] for r in everything["items"]] == expected
    assert everything["next_cursor"] is None

    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = account.admin.get(f"/v1/ip-profiles/{pid}/rules", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert 'rel="next"' in response.headers["Link"]
    assert seen == expected
    assert chain_ids(account.admin, pid, "OUTBOUND") == [out0, out1]

    assert_bad_request(account.admin.get(f"/v1/ip-profiles/{pid}/rules",
                                        params={"chain": "SIDEWAYS"}), "chain", "SIDEWAYS")
    assert_bad_request(account.admin.get(f"/v1/ip-profiles/{pid}/rules",
                                        params={"cursor": "garbage"}), "cursor", "garbage")


def _fill(account, profile_id: str, chain: str, count: int) -> None:
    """Insert `count` rules straight into the database: the API would take 1,000 requests."""
    now = utcnow()
    rows = [{"id": new_id("firewall_rule"), "account_id": account.account_id,
             "ip_profile_id": profile_id, "chain": chain, "position": i + 1, "action": "DENY",
             "protocol": "TCP", "remote_cidr": "198.51.100.0/24", "port_from": 1000 + i,
             "port_to": 1000 + i, "description": "", "created_at": now, "updated_at": now}
            for i in range(count)]
    with account.backend.database.transaction() as session:
        session.execute(insert(FirewallRule), rows)


def test_a_chain_holds_at_most_1000_rules(account) -> None:
    pid = make_profile(account.admin)["id"]
    _fill(account, pid, "INBOUND", 999)
    thousandth = add_rule(account.admin, pid, position=1, description="the 1000th")
    assert thousandth["position"] == 1

    refused = account.admin.post(f"/v1/ip-profiles/{pid}/rules",
                                json={"chain": "INBOUND", "action": "ALLOW"})
    assert refused.status_code == 412, refused.text
    assert refused.json()["code"] == "quota_exceeded"
    assert "1000" in refused.json()["detail"]

    # The limit is per chain: OUTBOUND still has room, but may not move a rule into INBOUND.
    outbound = add_rule(account.admin, pid, chain="OUTBOUND")
    moved = account.admin.patch(f"/v1/ip-profiles/{pid}/rules/{outbound['id']}",
                               json={"chain": "INBOUND"})
    assert moved.status_code == 412 and moved.json()["code"] == "quota_exceeded"
    # Moving within the full chain is no growth.
    within = account.admin.patch(f"/v1/ip-profiles/{pid}/rules/{thousandth['id']}",
                                json={"position": 1000})
    assert within.status_code == 200, within.text

    ids = chain_ids(account.admin, pid, "INBOUND")
    assert len(ids) == 1000 and ids[-1] == thousandth["id"]
    assert chain_ids(account.admin, pid, "OUTBOUND") == [outbound["id"]]
    profile = account.admin.get(f"/v1/ip-profiles/{pid}").json()
    assert len(profile["inbound"]["rules"]) == 1000


@pytest.mark.parametrize("body, field, mentions", [
    ({"remote_cidr": "10.0.0.1/8"}, "remote_cidr", ["10.0.0.1/8", "host bits"]),
    ({"remote_cidr": "10.0.0.0/33"}, "remote_cidr", ["10.0.0.0/33"]),
    ({"remote_cidr": "256.0.0.0/8"}, "remote_cidr", ["256.0.0.0/8"]),
    ({"remote_cidr": "10.0.0.0"}, "remote_cidr", ["10.0.0.0"]),
    ({"remote_cidr": "10.0.0.0/255.0.0.0"}, "remote_cidr", ["10.0.0.0/255.0.0.0"]),
    ({"remote_cidr": "2001:db8::/32"}, "remote_cidr", ["2001:db8::/32"]),
    ({"protocol": "TCP", "ports": "0"}, "ports", ["'0'"]),
    ({"protocol": "TCP", "ports": "65536"}, "ports", ["65536"]),
    ({"protocol": "TCP", "ports": "2000-1000"}, "ports", ["2000-1000"]),
    ({"protocol": "UDP", "ports": "80,443"}, "ports", ["80,443"]),
    ({"protocol": "UDP", "ports": "1-2-3"}, "ports", ["1-2-3"]),
    ({"protocol": "TCP", "ports": 443}, "ports", ["443"]),
    ({"protocol": "ICMP", "ports": "443"}, "ports", ["443", "ICMP"]),
    ({"ports": "443"}, "ports", ["443", "ANY"]),
    ({"protocol": "SCTP"}, "protocol", ["SCTP"]),
    ({"action": "REJECT"}, "action", ["REJECT"]),
    ({"chain": "FORWARD"}, "chain", ["FORWARD"]),
    ({"position": -1}, "position", []),
    ({"id": "rule_x"}, "id", ["unknown field"]),
])
def test_rule_validation(account, body, field, mentions) -> None:
    pid = make_profile(account.admin)["id"]
    payload = {"chain": "INBOUND", "action": "DENY"} | body
    assert_bad_request(account.admin.post(f"/v1/ip-profiles/{pid}/rules", json=payload),
                       field, *mentions)
    assert account.admin.get(f"/v1/ip-profiles/{pid}/rules").json()["items"] == []


def test_missing_required_rule_fields(account) -> None:
    pid = make_profile(account.admin)["id"]
    response = account.admin.post(f"/v1/ip-profiles/{pid}/rules", json={})
    body = assert_bad_request(response, "chain")
    assert "action" in [e["field"] for e in body["errors"]]


def test_patch_validation_considers_the_stored_rule(account) -> None:
    pid = make_profile(account.admin)["id"]
    rule = add_rule(account.admin, pid, protocol="TCP", ports="22")
    url = f"/v1/ip-profiles/{pid}/rules/{rule['id']}"
    # The stored ports forbid a protocol without ports unless the same PATCH clears them.
    assert_bad_request(account.admin.patch(url, json={"protocol": "ANY"}), "ports", "22", "ANY")
    assert_bad_request(account.admin.patch(url, json={"remote_cidr": "10.1.0.0/8"}),
                       "remote_cidr", "10.1.0.0/8")
    assert_bad_request(account.admin.patch(url, json={"chain": None}), "chain")
    assert account.admin.get(url).json() == rule


def test_rule_ids_are_scoped_to_account_and_profile(account, outsider) -> None:
    mine = make_profile(account.admin)["id"]
    sibling = make_profile(account.admin)["id"]
    rule = add_rule(account.admin, mine)
    theirs = make_profile(outsider.admin)["id"]
    for client, url in (
        (outsider.admin, f"/v1/ip-profiles/{mine}/rules/{rule['id']}"),
        (outsider.admin, f"/v1/ip-profiles/{theirs}/rules/{rule['id']}"),
        (account.admin, f"/v1/ip-profiles/{sibling}/rules/{rule['id']}"),
    ):
        for response in (client.get(url), client.patch(url, json={"action": "ALLOW"}),
                         client.delete(url)):
            assert response.status_code == 404, (url, response.text)
            assert response.json()["code"] == "not_found"
    assert account.admin.get(f"/v1/ip-profiles/{mine}/rules/{rule['id']}").json() == rule


def test_concurrent_inserts_never_duplicate_positions(account) -> None:
    pid = make_profile(account.admin)["id"]
    headers = {"Authorization": account.admin.headers["Authorization"]}

    def insert_at_top(_: int) -> list[str]:
        with httpx.Client(base_url=account.base_url, headers=headers, timeout=30) as client:
            return [add_rule(client, pid, position=1)["id"] for _ in range(6)]

    with ThreadPoolExecutor(4) as pool:
        created = [i for ids in pool.map(insert_at_top, range(4)) for i in ids]
    # chain_ids asserts the positions are exactly 1..24.
    assert sorted(chain_ids(account.admin, pid, "INBOUND")) == sorted(created)
