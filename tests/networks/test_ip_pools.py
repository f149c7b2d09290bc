"""IP pools: carving inside the allocation, overlap and quota refusals, extension, usage,
growing and shrinking, deletion."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from netkit import (
    add_pool,
    attach,
    get_pool,
    grant_extension,
    host,
    locked,
    make_network,
    network_with_pool,
    problem,
    things_on,
    unlock,
)
from sqlalchemy import func, select

from simplane.models import IpLease


@pytest.fixture
def tenant(new_tenant):  # type: ignore[no-untyped-def]
    # Pool arithmetic here is written for the product's default shape (a /16 allocation).
    return new_tenant(allocation_prefix=16)


@pytest.fixture
def other_tenant(new_tenant):  # type: ignore[no-untyped-def]
    return new_tenant(allocation_prefix=16)


def _allocation(tenant: Any) -> ipaddress.IPv4Network:
    allocations = tenant.admin.get("/v1/account").json()["ip_quota"]["allocations"]
    assert len(allocations) == 1, allocations
    return ipaddress.IPv4Network(allocations[0])


def _default_pool(tenant: Any) -> dict[str, Any]:
    items = tenant.admin.get("/v1/networks").json()["items"]
    return next(n for n in items if n["is_default"])["ip_pools"][0]


def _lease_rows(tenant: Any, network_id: str) -> int:
    with tenant.backend.database.transaction(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(IpLease).where(
            IpLease.network_id == network_id)))


def _block(allocation: ipaddress.IPv4Network, offset: int, prefix: int) -> str:
    """The /prefix block starting `offset` addresses into the allocation."""
    return str(ipaddress.IPv4Network((int(allocation.network_address) + offset, prefix)))


def test_pool_by_cidr_and_by_prefix_length(tenant):
    allocation = _allocation(tenant)
    default = ipaddress.IPv4Network(_default_pool(tenant)["cidr"])
    net = make_network(tenant.admin)

    wanted = _block(allocation, 0x8000, 24)
    by_cidr = add_pool(tenant.admin, net["id"], cidr=wanted, lease_seconds=3600)
    assert by_cidr["cidr"] == wanted and by_cidr["network_id"] == net["id"]
    assert (by_cidr["size"], by_cidr["usable"], by_cidr["leased"], by_cidr["locked"],
            by_cidr["free"], by_cidr["lease_seconds"]) == (256, 253, 0, 0, 253, 3600)

    carved = add_pool(tenant.admin, net["id"], prefix_length=22)
    block = ipaddress.IPv4Network(carved["cidr"])
    assert block.prefixlen == 22 and block.subnet_of(allocation)
    assert not block.overlaps(default) and not block.overlaps(ipaddress.IPv4Network(wanted))
    # The lowest free aligned block: right after the default pool.
    assert block.network_address == default.broadcast_address + 1
    assert (carved["size"], carved["usable"], carved["free"]) == (1024, 1021, 1021)

    listed = tenant.admin.get(f"/v1/networks/{net['id']}/ip-pools").json()["items"]
    assert {p["id"] for p in listed} == {by_cidr["id"], carved["id"]}
    assert {p["cidr"] for p in tenant.admin.get(f"/v1/networks/{net['id']}").json()[
        "ip_pools"]} == {wanted, carved["cidr"]}
    quota = tenant.admin.get("/v1/account").json()["ip_quota"]
    assert quota["assigned_to_pools"] == default.num_addresses + 256 + 1024
    assert quota["free"] == allocation.num_addresses - quota["assigned_to_pools"]


@pytest.fixture(scope="module")
def scratch(lab) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return make_network(lab.admin)


@pytest.mark.parametrize("body", [
    {}, {"cidr": "10.64.0.0/24", "prefix_length": 24}, {"cidr": "10.64.0.1/24"},
    {"cidr": "10.64.0.0/30"}, {"cidr": "10.64.0.0"}, {"cidr": "not-a-network"},
    {"prefix_length": 30}, {"prefix_length": 7}, {"prefix_length": 24, "lease_seconds": 10},
    {"prefix_length": 24, "gateway": "10.64.0.1"},
])
def test_invalid_pool_bodies_are_400(lab, scratch, body):
    net = scratch
    problem(lab.admin.post(f"/v1/networks/{net['id']}/ip-pools", json=body), 400)
    assert lab.admin.get(f"/v1/networks/{net['id']}/ip-pools").json()["items"] == []


def test_pools_of_one_account_never_overlap(tenant, other_tenant):
    allocation = _allocation(tenant)
    default = _default_pool(tenant)
    net = make_network(tenant.admin)
    inside_default = _block(allocation, 0x100, 24)
    body = problem(tenant.admin.post(f"/v1/networks/{net['id']}/ip-pools",
                                     json={"cidr": inside_default}), 412, "overlap")
    assert default["cidr"] in body["detail"] and inside_default in body["detail"]

    # Overlap across the account's Networks, and a larger block around an existing pool.
    first = add_pool(tenant.admin, net["id"], cidr=_block(allocation, 0x4000, 24))
    second = make_network(tenant.admin)
    problem(tenant.admin.post(f"/v1/networks/{second['id']}/ip-pools",
                              json={"cidr": _block(allocation, 0x4080, 25)}), 412, "overlap")
    body = problem(tenant.admin.post(f"/v1/networks/{second['id']}/ip-pools",
                                     json={"cidr": _block(allocation, 0x4000, 20)}),
                   412, "overlap")
    assert first["cidr"] in body["detail"]

    # Another account's allocation is not ours: outside the quota, not an overlap.
    theirs = _block(_allocation(other_tenant), 0x8000, 24)
    body = problem(tenant.admin.post(f"/v1/networks/{second['id']}/ip-pools",
                                     json={"cidr": theirs}), 412, "ip_quota_exceeded")
    assert "extension" in body["detail"]
    assert tenant.admin.get(f"/v1/networks/{second['id']}/ip-pools").json()["items"] == []


def test_beyond_the_allocation_until_the_operator_extends_it(tenant):
    net = make_network(tenant.admin)
    url = f"/v1/networks/{net['id']}/ip-pools"
    # A /16 allocation already holding the default pool has no free /16.
    body = problem(tenant.admin.post(url, json={"prefix_length": 16}), 412, "ip_quota_exceeded")
    assert "extension" in body["detail"].lower() and "operator" in body["detail"].lower()

    granted = grant_extension(tenant.backend, tenant.account_id, 16)
    pool = add_pool(tenant.admin, net["id"], prefix_length=16)
    assert pool["cidr"] == granted and pool["usable"] == 65533
    # Only addresses in use have rows: a /16 costs nothing until it hands one out.
    assert _lease_rows(tenant, net["id"]) == 0
    thing = things_on(tenant, net["id"])[0]
    assert attach(tenant.backend, tenant.account_id, thing["id"]) == host(granted, 2)
    assert _lease_rows(tenant, net["id"]) == 1
    quota = tenant.admin.get("/v1/account").json()["ip_quota"]
    assert granted in quota["allocations"] and quota["total"] == 2 * 65536


def test_a_cidr_outside_the_allocation_succeeds_once_extended(tenant):
    net = make_network(tenant.admin)
    url = f"/v1/networks/{net['id']}/ip-pools"
    granted = grant_extension(tenant.backend, tenant.account_id, 24)
    # Ask for a neighbour of the grant: outside until the operator grants that one too.
    neighbour = str(ipaddress.IPv4Network(granted).supernet(new_prefix=23))
    body = problem(tenant.admin.post(url, json={"cidr": neighbour}), 412, "ip_quota_exceeded")
    assert neighbour in body["detail"] and "extension" in body["detail"]
    assert add_pool(tenant.admin, net["id"], cidr=granted)["cidr"] == granted


def test_usage_counts_leased_locked_and_free(lab):
    net, pool = network_with_pool(lab.admin, 29)
    assert (pool["size"], pool["usable"], pool["leased"], pool["locked"], pool["free"]) == (
        8, 5, 0, 0, 5)
    a, b, c = things_on(lab, net["id"], 3)
    locked(lab.admin, a["id"])
    locked(lab.admin, b["id"])
    assert attach(lab.backend, lab.account_id, c["id"]) is not None
    usage = get_pool(lab.admin, net["id"], pool["id"])
    assert (usage["leased"], usage["locked"], usage["free"]) == (1, 2, 2)
    assert unlock(lab.admin, b["id"]).status_code == 200
    usage = get_pool(lab.admin, net["id"], pool["id"])
    assert (usage["leased"], usage["locked"], usage["free"]) == (2, 1, 2)
    embedded = lab.admin.get(f"/v1/networks/{net['id']}").json()["ip_pools"][0]
    assert embedded == usage


def test_growing_takes_the_enclosing_block(tenant):
    allocation = _allocation(tenant)
    net = make_network(tenant.admin)
    pool = add_pool(tenant.admin, net["id"], cidr=_block(allocation, 0x2080, 25))
    url = f"/v1/networks/{net['id']}/ip-pools/{pool['id']}"
    thing = things_on(tenant, net["id"])[0]
    address = locked(tenant.admin, thing["id"])
    etag = tenant.admin.get(url).headers["etag"]

    grown = tenant.admin.patch(url, json={"prefix_length": 23}, headers={"If-Match": etag})
    assert grown.status_code == 200, grown.text
    assert grown.json()["cidr"] == _block(allocation, 0x2000, 23)
    assert (grown.json()["size"], grown.json()["usable"], grown.json()["locked"]) == (512, 509, 1)
    assert grown.headers["etag"] != etag
    assert tenant.admin.get(f"/v1/things/{thing['id']}").json()["ip_address"] == address


def test_growing_needs_free_allocation(tenant):
    allocation = _allocation(tenant)
    net = make_network(tenant.admin)
    low = add_pool(tenant.admin, net["id"], cidr=_block(allocation, 0x3000, 25))
    add_pool(tenant.admin, net["id"], cidr=_block(allocation, 0x3080, 25))
    url = f"/v1/networks/{net['id']}/ip-pools/{low['id']}"
    etag = tenant.admin.get(url).headers["etag"]
    problem(tenant.admin.patch(url, json={"prefix_length": 24}), 412, "overlap")
    body = problem(tenant.admin.patch(url, json={"prefix_length": 15}), 412, "ip_quota_exceeded")
    assert "extension" in body["detail"]
    after = tenant.admin.get(url)
    assert after.json()["cidr"] == low["cidr"] and after.headers["etag"] == etag


@pytest.mark.parametrize("kind", ["locked", "leased"])
@pytest.mark.parametrize("index", [200, 127])  # beyond the half; the new broadcast address
def test_shrinking_may_not_cut_out_a_held_address(lab, kind, index):
    net, pool = network_with_pool(lab.admin, 24)
    url = f"/v1/networks/{net['id']}/ip-pools/{pool['id']}"
    thing = things_on(lab, net["id"])[0]
    locked(lab.admin, thing["id"], host(pool["cidr"], index))
    if kind == "leased":
        assert unlock(lab.admin, thing["id"]).status_code == 200
    before = lab.admin.get(url)

    body = problem(lab.admin.patch(url, json={"prefix_length": 25}), 412, "in_use")
    assert pool["cidr"] in body["detail"]
    after = lab.admin.get(url)
    assert after.json() == before.json() and after.headers["etag"] == before.headers["etag"]


def test_shrinking_keeps_the_start_when_nothing_is_cut(lab):
    net, pool = network_with_pool(lab.admin, 24)
    url = f"/v1/networks/{net['id']}/ip-pools/{pool['id']}"
    thing = things_on(lab, net["id"])[0]
    locked(lab.admin, thing["id"], host(pool["cidr"], 126))  # the last usable of the /25
    shrunk = lab.admin.patch(url, json={"prefix_length": 25, "lease_seconds": 600})
    assert shrunk.status_code == 200, shrunk.text
    body = shrunk.json()
    assert body["cidr"] == str(ipaddress.IPv4Network(pool["cidr"]).subnets(new_prefix=25)
                               .__next__())
    assert (body["size"], body["usable"], body["locked"], body["free"], body["lease_seconds"]) == (
        128, 125, 1, 124, 600)
    # The freed half is free allocation again.
    upper = str(list(ipaddress.IPv4Network(pool["cidr"]).subnets(new_prefix=25))[1])
    other = make_network(lab.admin)
    assert add_pool(lab.admin, other["id"], cidr=upper)["cidr"] == upper


def test_pool_with_leases_or_locks_cannot_be_deleted(lab):
    net, pool = network_with_pool(lab.admin, 29)
    url = f"/v1/networks/{net['id']}/ip-pools/{pool['id']}"
    thing = things_on(lab, net["id"])[0]
    locked(lab.admin, thing["id"])
    body = problem(lab.admin.delete(url), 412, "in_use")
    assert "1 locked" in body["detail"]
    assert unlock(lab.admin, thing["id"]).status_code == 200
    body = problem(lab.admin.delete(url), 412, "in_use")
    assert "1 leased" in body["detail"]
    assert lab.admin.get(url).status_code == 200


def test_empty_pool_deletes_with_if_match(lab):
    net, pool = network_with_pool(lab.admin, 29)
    url = f"/v1/networks/{net['id']}/ip-pools/{pool['id']}"
    problem(lab.admin.delete(url, headers={"If-Match": '"stale"'}), 412, "etag_mismatch")
    etag = lab.admin.get(url).headers["etag"]
    assert lab.admin.delete(url, headers={"If-Match": etag}).status_code == 204
    problem(lab.admin.get(url), 404, "not_found")
    # Its block is free allocation again.
    assert add_pool(lab.admin, net["id"], cidr=pool["cidr"])["cidr"] == pool["cidr"]


def test_pool_patch_validation(lab):
    net, pool = network_with_pool(lab.admin, 29)
    url = f"/v1/networks/{net['id']}/ip-pools/{pool['id']}"
    for body in ({"prefix_length": 30}, {"lease_seconds": 59}, {"cidr": "10.0.0.0/24"}):
        problem(lab.admin.patch(url, json=body), 400)
    assert get_pool(lab.admin, net["id"], pool["id"])["cidr"] == pool["cidr"]
