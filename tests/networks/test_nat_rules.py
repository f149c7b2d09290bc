"""NAT port forwarding rules: a public port of the Network's NAT address to a locked IP."""

from __future__ import annotations

from typing import Any

import pytest
from netkit import (
    attach,
    created,
    fields,
    locked,
    network_with_pool,
    problem,
    things_on,
)


@pytest.fixture(scope="module")
def site(lab) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A Network with Things: two locked, one with only a dynamic lease, one without address."""
    network, pool = network_with_pool(lab.admin, 28)
    first, second, dynamic, bare = things_on(lab, network["id"], 4)
    locked(lab.admin, first["id"])
    locked(lab.admin, second["id"])
    attach(lab.backend, lab.account_id, dynamic["id"])
    return {"network": network, "url": f"/v1/networks/{network['id']}/nat-rules",
            "first": first["id"], "second": second["id"], "dynamic": dynamic["id"],
            "bare": bare["id"]}


def _rule(thing_id: str, public_port: int, protocol: str = "TCP", **extra: Any) -> dict[str, Any]:
    return {"protocol": protocol, "public_port": public_port, "thing_id": thing_id,
            "private_port": 22, **extra}


def test_create_read_update_delete(lab, site):
    url = site["url"]
    rule = created(lab.admin.post(url, json=_rule(site["first"], 10022, description="ssh")))
    assert rule["public_ip"] == site["network"]["nat_public_ip"]
    assert (rule["protocol"], rule["public_port"], rule["thing_id"], rule["private_port"],
            rule["description"], rule["network_id"]) == (
        "TCP", 10022, site["first"], 22, "ssh", site["network"]["id"])
    got = lab.admin.get(f"{url}/{rule['id']}")
    assert got.status_code == 200 and got.json() == rule
    assert rule["id"] in {r["id"] for r in lab.admin.get(url).json()["items"]}

    problem(lab.admin.patch(f"{url}/{rule['id']}", json={"private_port": 2222},
                            headers={"If-Match": '"stale"'}), 412, "etag_mismatch")
    patched = lab.admin.patch(f"{url}/{rule['id']}", json={"private_port": 2222},
                              headers={"If-Match": got.headers["etag"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["private_port"] == 2222 and patched.json()["public_port"] == 10022
    problem(lab.admin.patch(f"{url}/{rule['id']}", json={"thing_id": site["second"]}), 400)

    assert lab.admin.delete(f"{url}/{rule['id']}").status_code == 204
    problem(lab.admin.get(f"{url}/{rule['id']}"), 404, "not_found")


@pytest.mark.parametrize("who", ["dynamic", "bare"])
def test_a_thing_without_a_locked_ip_is_refused(lab, site, who):
    body = problem(lab.admin.post(site["url"], json=_rule(site[who], 10100)), 412,
                   "ip_not_locked")
    assert site[who] in body["detail"]
    assert all(r["thing_id"] != site[who] for r in lab.admin.get(site["url"]).json()["items"])


def test_a_thing_on_another_network_is_refused(lab, site):
    elsewhere, _ = network_with_pool(lab.admin, 29)
    stranger = things_on(lab, elsewhere["id"])[0]
    locked(lab.admin, stranger["id"])
    body = problem(lab.admin.post(site["url"], json=_rule(stranger["id"], 10200)), 412,
                   "not_on_network")
    assert stranger["id"] in body["detail"] and elsewhere["id"] in body["detail"]
    # On its own Network the same rule is fine.
    created(lab.admin.post(f"/v1/networks/{elsewhere['id']}/nat-rules",
                           json=_rule(stranger["id"], 10200)))


def test_public_port_is_unique_per_protocol_and_public_ip(lab, site):
    url = site["url"]
    first = created(lab.admin.post(url, json=_rule(site["first"], 10300)))
    body = problem(lab.admin.post(url, json=_rule(site["second"], 10300)), 412, "conflict")
    assert first["id"] in body["detail"] and "10300" in body["detail"]
    # Another protocol on the same port is another forward.
    created(lab.admin.post(url, json=_rule(site["second"], 10300, "UDP")))
    # Moving a rule onto a taken port is refused too, and changes nothing.
    other = created(lab.admin.post(url, json=_rule(site["second"], 10301)))
    problem(lab.admin.patch(f"{url}/{other['id']}", json={"public_port": 10300}), 412,
            "conflict")
    assert lab.admin.get(f"{url}/{other['id']}").json()["public_port"] == 10301
    same = lab.admin.patch(f"{url}/{other['id']}", json={"public_port": 10301})
    assert same.status_code == 200, same.text


def test_another_networks_public_ip_has_its_own_ports(lab, site):
    elsewhere, _ = network_with_pool(lab.admin, 29)
    thing = things_on(lab, elsewhere["id"])[0]
    locked(lab.admin, thing["id"])
    created(lab.admin.post(site["url"], json=_rule(site["first"], 10400)))
    rule = created(lab.admin.post(f"/v1/networks/{elsewhere['id']}/nat-rules",
                                  json=_rule(thing["id"], 10400)))
    assert rule["public_ip"] == elsewhere["nat_public_ip"] != site["network"]["nat_public_ip"]


def test_unknown_thing_is_an_unknown_reference(lab, site):
    missing = "thg_" + "0" * 29
    body = problem(lab.admin.post(site["url"], json=_rule(missing, 10500)), 400,
                   "unknown_reference")
    assert "thing_id" in fields(body) and missing in body["detail"]


@pytest.mark.parametrize("change", [
    {"protocol": "ICMP"}, {"public_port": 0}, {"public_port": 65536}, {"private_port": 0},
    {"public_ip": "198.51.100.200"}, {"description": "x" * 2001},
])
def test_invalid_rules_are_400(lab, site, change):
    problem(lab.admin.post(site["url"], json={**_rule(site["first"], 10600), **change}), 400)


def test_missing_fields_are_named(lab, site):
    body = problem(lab.admin.post(site["url"], json={"protocol": "TCP"}), 400)
    assert {"public_port", "thing_id", "private_port"} <= {f.split(".")[-1] for f in fields(body)}
