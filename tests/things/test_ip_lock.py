"""PATCH /v1/things/{id} ip_lock, and what retiring and moving do to a locked IP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from netkit import (
    attach,
    events,
    fields,
    get_pool,
    get_thing,
    host,
    lock,
    locked,
    make_group,
    network_with_pool,
    open_tenant,
    problem,
    things_on,
    unlock,
)


@pytest.fixture(scope="module")
def lab(pytestconfig: pytest.Config, server: Any, backend: Any) -> Iterator[Any]:
    tenant = open_tenant(pytestconfig, server, backend, "IP lock")
    yield tenant
    tenant.close()


@pytest.fixture
def net(lab) -> tuple[dict[str, Any], dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A Network of this test with one /28 pool (13 usable: .2 to .14)."""
    return network_with_pool(lab.admin, 28)


def test_lock_a_free_address_of_the_network(lab, net):
    network, pool = net
    thing = things_on(lab, network["id"])[0]
    assert thing["ip_address"] is None and thing["ip_locked"] is False
    response = lock(lab.admin, thing["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ip_locked"] is True and body["ip_address"] == host(pool["cidr"], 2)
    assert get_thing(lab.admin, thing["id"]) == body
    [event] = events(lab.admin, "thing.ip_locked", thing["id"])
    assert event["data"] == {"ip_address": body["ip_address"], "network_id": network["id"]}
    assert get_pool(lab.admin, network["id"], pool["id"])["locked"] == 1


def test_lock_keeps_the_current_address(lab, net):
    network, pool = net
    first, second = things_on(lab, network["id"], 2)
    assert attach(lab.backend, lab.account_id, first["id"]) == host(pool["cidr"], 2)
    current = attach(lab.backend, lab.account_id, second["id"])
    assert current == host(pool["cidr"], 3)
    assert locked(lab.admin, second["id"]) == current
    usage = get_pool(lab.admin, network["id"], pool["id"])
    assert (usage["leased"], usage["locked"]) == (1, 1)


def test_lock_a_requested_address(lab, net):
    network, pool = net
    thing = things_on(lab, network["id"])[0]
    wanted = host(pool["cidr"], 9)
    assert locked(lab.admin, thing["id"], wanted) == wanted
    [event] = events(lab.admin, "thing.ip_locked", thing["id"])
    assert event["data"]["ip_address"] == wanted
    found = lab.admin.get("/v1/things", params={"ip_address": wanted}).json()["items"]
    assert [t["id"] for t in found] == [thing["id"]]
    lookup = lab.admin.get("/v1/things/lookup", params={"ip_address": wanted},
                           follow_redirects=False)
    assert lookup.status_code == 302 and lookup.headers["location"].endswith(thing["id"])
    # Asking again for the same address is a same-state request: no second event.
    assert locked(lab.admin, thing["id"], wanted) == wanted
    assert locked(lab.admin, thing["id"]) == wanted
    assert len(events(lab.admin, "thing.ip_locked", thing["id"])) == 1


def test_requesting_another_address_moves_a_dynamic_lease(lab, net):
    network, pool = net
    thing = things_on(lab, network["id"])[0]
    assert attach(lab.backend, lab.account_id, thing["id"]) == host(pool["cidr"], 2)
    assert locked(lab.admin, thing["id"], host(pool["cidr"], 12)) == host(pool["cidr"], 12)
    usage = get_pool(lab.admin, network["id"], pool["id"])
    assert (usage["leased"], usage["locked"]) == (0, 1)
    other = things_on(lab, network["id"])[0]
    assert locked(lab.admin, other["id"]) == host(pool["cidr"], 2)


@pytest.mark.parametrize("where", ["network", "gateway", "broadcast", "outside", "other_pool",
                                   "not_an_ip"])
def test_requested_address_must_be_assignable_on_the_network(lab, net, where):
    network, pool = net
    thing = things_on(lab, network["id"])[0]
    default = next(n for n in lab.admin.get("/v1/networks").json()["items"] if n["is_default"])
    requested = {
        "network": host(pool["cidr"], 0), "gateway": host(pool["cidr"], 1),
        "broadcast": host(pool["cidr"], -1), "outside": "192.0.2.10",
        "other_pool": host(default["ip_pools"][0]["cidr"], 5), "not_an_ip": "10.1.2.300",
    }[where]
    body = problem(lock(lab.admin, thing["id"], requested), 400)
    assert "ip_lock.ip_address" in fields(body), body
    assert requested in body["detail"] or where == "not_an_ip"
    after = get_thing(lab.admin, thing["id"])
    assert (after["ip_address"], after["ip_locked"]) == (None, False)
    assert events(lab.admin, "thing.ip_locked", thing["id"]) == []


def test_address_held_by_another_thing_is_refused(lab, net):
    network, pool = net
    holder, dynamic, asker = things_on(lab, network["id"], 3)
    taken = locked(lab.admin, holder["id"], host(pool["cidr"], 5))
    body = problem(lock(lab.admin, asker["id"], taken), 412, "ip_in_use")
    assert taken in body["detail"]
    leased = attach(lab.backend, lab.account_id, dynamic["id"])
    problem(lock(lab.admin, asker["id"], leased), 412, "ip_in_use")
    after = get_thing(lab.admin, asker["id"])
    assert (after["ip_address"], after["ip_locked"]) == (None, False)


def test_a_locked_thing_must_unlock_before_locking_elsewhere(lab, net):
    network, pool = net
    thing = things_on(lab, network["id"])[0]
    first = locked(lab.admin, thing["id"])
    body = problem(lock(lab.admin, thing["id"], host(pool["cidr"], 10)), 412, "ip_locked")
    assert first in body["detail"]
    assert get_thing(lab.admin, thing["id"])["ip_address"] == first


def test_unlock_keeps_the_address_as_a_dynamic_lease(lab, net):
    network, pool = net
    thing = things_on(lab, network["id"])[0]
    address = locked(lab.admin, thing["id"], host(pool["cidr"], 7))
    response = unlock(lab.admin, thing["id"])
    assert response.status_code == 200, response.text
    assert (response.json()["ip_locked"], response.json()["ip_address"]) == (False, address)
    [event] = events(lab.admin, "thing.ip_unlocked", thing["id"])
    assert event["data"]["ip_address"] == address
    usage = get_pool(lab.admin, network["id"], pool["id"])
    assert (usage["leased"], usage["locked"]) == (1, 0)
    # The lease is still the Thing's: the next session gets it, and so does a new lock.
    assert attach(lab.backend, lab.account_id, thing["id"]) == address
    assert locked(lab.admin, thing["id"]) == address
    # Unlocking an unlocked Thing is a same-state request.
    unlock(lab.admin, thing["id"])
    assert unlock(lab.admin, thing["id"]).status_code == 200
    assert len(events(lab.admin, "thing.ip_unlocked", thing["id"])) == 2


def test_unlock_with_an_address_is_refused(lab, net):
    network, _ = net
    thing = things_on(lab, network["id"])[0]
    locked(lab.admin, thing["id"])
    body = problem(lab.admin.patch(f"/v1/things/{thing['id']}", json={
        "ip_lock": {"locked": False, "ip_address": "10.0.0.5"}}), 400)
    assert "ip_lock.ip_address" in fields(body)
    assert get_thing(lab.admin, thing["id"])["ip_locked"] is True


def test_unlock_is_refused_while_nat_rules_forward_to_the_address(lab, net):
    network, _ = net
    thing = things_on(lab, network["id"])[0]
    locked(lab.admin, thing["id"])
    rule = lab.admin.post(f"/v1/networks/{network['id']}/nat-rules", json={
        "protocol": "TCP", "public_port": 2222, "thing_id": thing["id"], "private_port": 22})
    assert rule.status_code == 201, rule.text
    body = problem(unlock(lab.admin, thing["id"]), 412, "in_use")
    assert rule.json()["id"] in body["detail"]
    assert get_thing(lab.admin, thing["id"])["ip_locked"] is True


def test_the_last_free_address_and_then_exhaustion(lab):
    network, pool = network_with_pool(lab.admin, 29)  # 5 usable
    things = things_on(lab, network["id"], 6)
    got = [locked(lab.admin, t["id"]) for t in things[:5]]
    assert got == [host(pool["cidr"], i) for i in range(2, 7)]
    problem(lock(lab.admin, things[5]["id"]), 412, "pool_exhausted")
    assert get_thing(lab.admin, things[5]["id"])["ip_locked"] is False


def test_lock_requires_the_manager_role(lab, net):
    network, _ = net
    thing = things_on(lab, network["id"])[0]
    problem(lock(lab.client("viewer"), thing["id"]), 403)
    manager = lab.client("manager")
    assert lock(manager, thing["id"]).status_code == 200


# --- retiring --------------------------------------------------------------------------------

def test_retiring_releases_the_lock_and_deletes_its_nat_rules(lab, net):
    network, pool = net
    thing, successor = things_on(lab, network["id"], 2)
    address = locked(lab.admin, thing["id"], host(pool["cidr"], 4))
    base = f"/v1/networks/{network['id']}/nat-rules"
    rules = [lab.admin.post(base, json={"protocol": protocol, "public_port": port,
                                        "thing_id": thing["id"], "private_port": 22}).json()
             for protocol, port in (("TCP", 2022), ("UDP", 2023))]

    response = lab.admin.patch(f"/v1/things/{thing['id']}", json={"state": "RETIRED"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["ip_locked"], body["ip_address"]) == ("RETIRED", False, None)
    for rule in rules:
        problem(lab.admin.get(f"{base}/{rule['id']}"), 404)
    [event] = events(lab.admin, "thing.ip_unlocked", thing["id"])
    assert event["data"]["ip_address"] == address and event["data"]["reason"] == "retired"
    assert sorted(event["data"]["nat_rules_deleted"]) == sorted(r["id"] for r in rules)
    usage = get_pool(lab.admin, network["id"], pool["id"])
    assert (usage["leased"], usage["locked"]) == (0, 0)
    # The address and the public ports are free for others.
    assert locked(lab.admin, successor["id"], address) == address
    again = lab.admin.post(base, json={"protocol": "TCP", "public_port": 2022,
                                       "thing_id": successor["id"], "private_port": 22})
    assert again.status_code == 201, again.text


def test_retiring_releases_a_dynamic_lease(lab, net):
    network, pool = net
    thing = things_on(lab, network["id"])[0]
    assert attach(lab.backend, lab.account_id, thing["id"]) == host(pool["cidr"], 2)
    body = lab.admin.patch(f"/v1/things/{thing['id']}", json={"state": "RETIRED"}).json()
    assert (body["state"], body["ip_address"]) == ("RETIRED", None)
    assert get_pool(lab.admin, network["id"], pool["id"])["leased"] == 0
    assert events(lab.admin, "thing.ip_unlocked", thing["id"]) == []


def test_a_retired_thing_cannot_lock(lab, net):
    network, _ = net
    thing = things_on(lab, network["id"])[0]
    assert lab.admin.patch(f"/v1/things/{thing['id']}",
                           json={"state": "RETIRED"}).status_code == 200
    problem(lock(lab.admin, thing["id"]), 412, "invalid_state_transition")
    # Retiring and locking in one request would leave a retired SIM holding an address.
    other = things_on(lab, network["id"])[0]
    problem(lab.admin.patch(f"/v1/things/{other['id']}", json={
        "state": "RETIRED", "ip_lock": {"locked": True}}), 412, "invalid_state_transition")
    after = get_thing(lab.admin, other["id"])
    assert (after["state"], after["ip_locked"], after["ip_address"]) == (
        "PROVISIONED", False, None)
    assert events(lab.admin, "thing.ip_locked", other["id"]) == []


# --- moving ----------------------------------------------------------------------------------

def test_a_locked_ip_cannot_move_to_another_network(lab, net):
    network, _ = net
    thing = things_on(lab, network["id"])[0]
    address = locked(lab.admin, thing["id"])
    elsewhere, _ = network_with_pool(lab.admin, 29)
    target = make_group(lab.admin, elsewhere["id"])
    body = problem(lab.admin.patch(f"/v1/things/{thing['id']}",
                                   json={"things_group_id": target["id"]}), 412, "ip_locked")
    assert address in body["detail"]
    after = get_thing(lab.admin, thing["id"])
    assert (after["things_group_id"], after["ip_address"], after["ip_locked"]) == (
        thing["things_group_id"], address, True)

    # A group on the same Network is no move of Network: the lock stays.
    sibling = make_group(lab.admin, network["id"])
    moved = lab.admin.patch(f"/v1/things/{thing['id']}", json={"things_group_id": sibling["id"]})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["ip_address"], moved.json()["ip_locked"]) == (address, True)

    # Unlocked, it moves and gives the address back.
    assert unlock(lab.admin, thing["id"]).status_code == 200
    moved = lab.admin.patch(f"/v1/things/{thing['id']}", json={"things_group_id": target["id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["ip_address"] is None


def test_moving_to_another_network_releases_a_dynamic_lease(lab, net):
    network, pool = net
    thing = things_on(lab, network["id"])[0]
    address = attach(lab.backend, lab.account_id, thing["id"])
    elsewhere, other_pool = network_with_pool(lab.admin, 29)
    target = make_group(lab.admin, elsewhere["id"])
    moved = lab.admin.patch(f"/v1/things/{thing['id']}", json={"things_group_id": target["id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["ip_address"] is None
    assert get_pool(lab.admin, network["id"], pool["id"])["leased"] == 0
    # The old address is free on the old Network; the Thing gets one on the new Network.
    newcomer = things_on(lab, network["id"])[0]
    assert locked(lab.admin, newcomer["id"]) == address
    assert attach(lab.backend, lab.account_id, thing["id"]) == host(other_pool["cidr"], 2)


def test_changing_a_groups_network_with_locked_things_is_refused(lab, net):
    network, pool = net
    group = make_group(lab.admin, network["id"])
    holder, dynamic = things_on(lab, network["id"], 2, group=group)
    address = locked(lab.admin, holder["id"])
    attach(lab.backend, lab.account_id, dynamic["id"])
    elsewhere, new_pool = network_with_pool(lab.admin, 29)
    url = f"/v1/things-groups/{group['id']}"
    body = problem(lab.admin.patch(url, json={"network_id": elsewhere["id"]}), 412, "ip_locked")
    assert holder["id"] in body["detail"]
    assert lab.admin.get(url).json()["network_id"] == network["id"]
    assert get_thing(lab.admin, dynamic["id"])["ip_address"] is not None

    assert unlock(lab.admin, holder["id"]).status_code == 200
    changed = lab.admin.patch(url, json={"network_id": elsewhere["id"]})
    assert changed.status_code == 200, changed.text
    for thing in (holder, dynamic):
        assert get_thing(lab.admin, thing["id"])["ip_address"] is None
    usage = get_pool(lab.admin, network["id"], pool["id"])
    assert (usage["leased"], usage["locked"]) == (0, 0)
    assert locked(lab.admin, holder["id"]) == host(new_pool["cidr"], 2) != address


def test_openapi_documents_every_ip_lock_refusal(lab):
    operation = lab.admin.get("/openapi.json").json()["paths"]["/v1/things/{thing_id}"]["patch"]
    text = json.dumps(operation["responses"])
    for code in ("ip_locked", "ip_in_use", "pool_exhausted", "in_use",
                 "invalid_state_transition", "validation_error"):
        assert f"`{code}`" in text, code
