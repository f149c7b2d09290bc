"""Access-Request decisions (network.md §1) over real RADIUS, driven with radclient."""

from __future__ import annotations

import ipaddress

import pytest
from radius_helpers import (
    UdpClient,
    access_attributes,
    accounting_attributes,
    decode_reply,
    default_pool,
    encode_access,
    events_of,
    get_thing,
    metric,
    new_session_id,
    patch_thing,
    pyrad_values,
    radclient,
    second_network,
)
from pyrad import packet as rp

from simplane.things.identifiers import random_imsi


def attach(radius, imsi: str, **overrides: object):  # type: ignore[no-untyped-def]
    run = radclient(radius.auth_port, "auth", access_attributes(imsi, **overrides))
    assert run.reply is not None, str(run)
    return run.reply


def in_pool(address: str | None, cidr: str) -> bool:
    return address is not None and ipaddress.IPv4Address(address) in ipaddress.IPv4Network(cidr)


def test_accept_carries_an_address_of_the_default_pool_interim_interval_and_signature(
        radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    pool = default_pool(tenant.admin)

    reply = attach(radius, thing["imsi"])

    assert reply.code == "Access-Accept", reply
    address = reply.get("Framed-IP-Address")
    assert in_pool(address, pool["cidr"]), (address, pool)
    # Network, gateway and broadcast addresses are never handed out.
    network = ipaddress.IPv4Network(pool["cidr"])
    assert address not in {str(network.network_address), str(network.network_address + 1),
                           str(network.broadcast_address)}
    assert reply.get("Acct-Interim-Interval") == str(radius.settings.radius_interim_interval)
    assert reply.get("Message-Authenticator") is not None
    assert get_thing(tenant.admin, thing["id"])["ip_address"] == address


def test_a_thing_on_a_second_network_gets_an_address_of_that_networks_pool(
        radius, tenant, active_things):  # type: ignore[no-untyped-def]
    _, pool, group = second_network(tenant.admin, prefix_length=28)
    (thing,) = active_things(1)
    patch_thing(tenant.admin, thing["id"], {"things_group_id": group["id"]})

    reply = attach(radius, thing["imsi"])

    assert reply.code == "Access-Accept", reply
    assert in_pool(reply.get("Framed-IP-Address"), pool["cidr"]), (reply, pool)
    assert not in_pool(reply.get("Framed-IP-Address"), default_pool(tenant.admin)["cidr"])


def test_a_locked_ip_is_the_address_given(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    first, second = active_things(2)
    pool = ipaddress.IPv4Network(default_pool(tenant.admin)["cidr"])
    locked = str(pool.network_address + 77)
    patch_thing(tenant.admin, second["id"], {"ip_lock": {"locked": True, "ip_address": locked}})

    # The other Thing attaches first and takes the first free address, not the locked one.
    assert attach(radius, first["imsi"]).get("Framed-IP-Address") != locked
    reply = attach(radius, second["imsi"])

    assert reply.code == "Access-Accept", reply
    assert reply.get("Framed-IP-Address") == locked


def test_the_lists_address_filter_finds_the_things_an_attach_and_a_lock_addressed(
        radius, tenant, active_things):  # type: ignore[no-untyped-def]
    attached, locked_thing, _ = active_things(3)
    address = attach(radius, attached["imsi"]).get("Framed-IP-Address")
    locked = str(ipaddress.IPv4Network(default_pool(tenant.admin)["cidr"]).network_address + 99)
    patch_thing(tenant.admin, locked_thing["id"], {"ip_lock": {"locked": True,
                                                               "ip_address": locked}})

    def found(ip: str) -> list[str]:
        response = tenant.admin.get("/v1/things", params={"ip_address": ip})
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert found(address) == [attached["id"]]
    assert found(locked) == [locked_thing["id"]]
    assert found(str(ipaddress.IPv4Address(locked) + 1)) == []


def test_a_thing_keeps_its_address_across_reconnects(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    first, second = active_things(2)
    address = attach(radius, first["imsi"]).get("Framed-IP-Address")
    session_id = new_session_id()
    for status in ("Start", "Stop"):
        run = radclient(radius.acct_port, "acct", accounting_attributes(
            first["imsi"], status, session_id, **{"Framed-IP-Address": address}))
        assert run.reply is not None and run.reply.code == "Accounting-Response", str(run)

    # The address stays leased after Stop: another Thing does not get it ...
    other = attach(radius, second["imsi"]).get("Framed-IP-Address")
    assert other is not None and other != address
    # ... and the first Thing gets it back when it reconnects.
    again = attach(radius, first["imsi"])
    assert again.code == "Access-Accept", again
    assert again.get("Framed-IP-Address") == address


# --- every reject reason --------------------------------------------------------------------

def _setup_apn(tenant, thing, radius):  # type: ignore[no-untyped-def]
    return {"Called-Station-Id": "internet.example"}


def _setup_not_active(tenant, thing, radius):  # type: ignore[no-untyped-def]
    patch_thing(tenant.admin, thing["id"], {"state": "SUSPENDED"})
    return {}


def _setup_data_disabled(tenant, thing, radius):  # type: ignore[no-untyped-def]
    patch_thing(tenant.admin, thing["id"], {"services": {"data": False}})
    return {}


def _setup_roaming(tenant, thing, radius):  # type: ignore[no-untyped-def]
    return {"3GPP-SGSN-MCC-MNC": "310260"}  # T-Mobile US: outside NL, BE, LU


def _setup_nb_iot(tenant, thing, radius):  # type: ignore[no-untyped-def]
    return {"3GPP-RAT-Type": 8}


def _setup_imei_lock(tenant, thing, radius):  # type: ignore[no-untyped-def]
    first = attach(radius, thing["imsi"], **{"3GPP-IMEISV": "3534900698733101"})
    assert first.code == "Access-Accept", first
    patch_thing(tenant.admin, thing["id"], {"imei_lock": True})
    # The locked IMEI itself is still welcome.
    assert attach(radius, thing["imsi"], **{"3GPP-IMEISV": "3534900698733102"}).code == \
        "Access-Accept"
    return {"3GPP-IMEISV": "8675309012345601"}


REJECTS = {
    "apn_mismatch": _setup_apn,
    "not_active": _setup_not_active,
    "data_disabled": _setup_data_disabled,
    "roaming_not_allowed": _setup_roaming,
    "rat_not_supported": _setup_nb_iot,
    "imei_mismatch": _setup_imei_lock,
}


@pytest.mark.parametrize("reason", list(REJECTS))
def test_reject_names_the_reason_raises_the_event_and_counts_it(
        radius, tenant, active_things, reason):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    overrides = REJECTS[reason](tenant, thing, radius)
    before = metric(radius.base_url, "simplane_radius_decisions_total", result=reason)

    reply = attach(radius, thing["imsi"], **overrides)

    assert reply.code == "Access-Reject", reply
    assert reply.get("Reply-Message").startswith(f"{reason}:"), reply
    assert reply.get("Framed-IP-Address") is None
    assert reply.get("Message-Authenticator") is not None
    events = events_of(tenant.admin, thing["id"], "thing.attach_rejected")
    assert [e["data"]["reason"] for e in events] == [reason]
    assert events[0]["data"]["imsi"] == thing["imsi"]
    assert metric(radius.base_url, "simplane_radius_decisions_total", result=reason) == before + 1


def test_unknown_sim_is_rejected_without_an_event(radius, tenant):  # type: ignore[no-untyped-def]
    before = metric(radius.base_url, "simplane_radius_decisions_total", result="unknown_sim")

    reply = attach(radius, random_imsi())

    assert reply.code == "Access-Reject", reply
    assert reply.get("Reply-Message").startswith("unknown_sim:"), reply
    assert metric(radius.base_url, "simplane_radius_decisions_total",
                  result="unknown_sim") == before + 1


def test_pool_exhausted_when_the_networks_pool_is_full(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    network, pool, group = second_network(tenant.admin, prefix_length=29)
    assert pool["usable"] == 5
    things = active_things(6)
    for thing in things:
        patch_thing(tenant.admin, thing["id"], {"things_group_id": group["id"]})
    before = metric(radius.base_url, "simplane_radius_decisions_total", result="pool_exhausted")

    replies = [attach(radius, thing["imsi"]) for thing in things]

    addresses = [r.get("Framed-IP-Address") for r in replies[:5]]
    assert [r.code for r in replies[:5]] == ["Access-Accept"] * 5, replies
    assert all(in_pool(a, pool["cidr"]) for a in addresses) and len(set(addresses)) == 5
    last = replies[5]
    assert last.code == "Access-Reject", last
    assert last.get("Reply-Message").startswith("pool_exhausted:"), last
    rejected = events_of(tenant.admin, things[5]["id"], "thing.attach_rejected")
    assert [e["data"]["reason"] for e in rejected] == ["pool_exhausted"]
    exhausted = events_of(tenant.admin, things[5]["id"], "ip_pool.exhausted")
    assert len(exhausted) == 1 and exhausted[0]["data"]["network_id"] == network["id"]
    assert metric(radius.base_url, "simplane_radius_decisions_total",
                  result="pool_exhausted") == before + 1
    shown = tenant.admin.get(f"/v1/networks/{network['id']}/ip-pools/{pool['id']}").json()
    assert (shown["leased"], shown["free"]) == (5, 0)


def test_accepts_are_counted_in_the_metrics(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    before = metric(radius.base_url, "simplane_radius_decisions_total", result="accepted")
    assert attach(radius, thing["imsi"]).code == "Access-Accept"
    assert metric(radius.base_url, "simplane_radius_decisions_total",
                  result="accepted") == before + 1


# --- Message-Authenticator (BlastRADIUS) ----------------------------------------------------

def _forge_message_authenticator(raw: bytes) -> bytes:
    at = 20
    while at < len(raw):
        kind, length = raw[at], raw[at + 1]
        if kind == 80:
            value = bytes(b ^ 0xFF for b in raw[at + 2:at + length])
            return raw[:at + 2] + value + raw[at + length:]
        at += length
    raise AssertionError("no Message-Authenticator in the packet")


def test_a_wrong_message_authenticator_is_dropped(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    attributes = pyrad_values(access_attributes(thing["imsi"]))
    forged = encode_access(attributes)
    genuine = encode_access(attributes)
    with UdpClient() as nas:
        assert nas.exchange(_forge_message_authenticator(forged.RequestPacket()),
                            radius.auth_port, timeout=1.0) is None
        data = nas.exchange(genuine.RequestPacket(), radius.auth_port)
    assert data is not None
    reply = decode_reply(genuine, data)
    assert reply.code == rp.AccessAccept
    # The dropped request decided nothing: the one accept is the genuine request's.
    assert events_of(tenant.admin, thing["id"], "thing.attach_rejected") == []


def test_a_retransmission_is_answered_after_a_forged_copy_was_dropped(radius, tenant,  # type: ignore[no-untyped-def]
                                                                      active_things):
    # Same source, identifier and authenticator as the genuine request: a forged copy that
    # arrives first must not make the server ignore the NAS's real (re)transmission.
    (thing,) = active_things(1)
    genuine = encode_access(pyrad_values(access_attributes(thing["imsi"])))
    raw = genuine.RequestPacket()
    with UdpClient() as nas:
        assert nas.exchange(_forge_message_authenticator(raw), radius.auth_port,
                            timeout=1.0) is None
        data = nas.exchange(raw, radius.auth_port)
    assert data is not None
    assert decode_reply(genuine, data).code == rp.AccessAccept


def test_message_authenticator_can_be_made_mandatory(start_radius, tenant, active_things):  # type: ignore[no-untyped-def]
    strict = start_radius(radius_require_message_authenticator=True)
    (thing,) = active_things(1)

    without = radclient(strict.auth_port, "auth", access_attributes(thing["imsi"]),
                        timeout=1, retries=1)
    assert without.replies == [], str(without)

    signed = radclient(strict.auth_port, "auth", access_attributes(
        thing["imsi"], **{"Message-Authenticator": "0x00"}))
    assert signed.reply is not None and signed.reply.code == "Access-Accept", str(signed)


def test_an_unsigned_request_is_accepted_when_not_mandatory(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    run = radclient(radius.auth_port, "auth", access_attributes(thing["imsi"]))
    assert "Message-Authenticator" not in run.stdout.split("Received")[0]
    assert run.reply is not None and run.reply.code == "Access-Accept", str(run)


def test_a_wrong_shared_secret_gets_no_answer(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    run = radclient(radius.auth_port, "auth", access_attributes(
        thing["imsi"], **{"Message-Authenticator": "0x00"}), secret="not-the-secret",
        timeout=1, retries=1)
    assert run.replies == [], str(run)
    assert get_thing(tenant.admin, thing["id"])["ip_address"] is None


# --- retransmitted Access-Requests ------------------------------------------------------------

def test_a_duplicated_access_request_gets_the_same_answer_and_is_decided_once(
        radius, tenant, active_things):  # type: ignore[no-untyped-def]
    accepted, suspended = active_things(2)
    patch_thing(tenant.admin, suspended["id"], {"state": "SUSPENDED"})
    # A new IMEI on the accepted one: deciding twice would record it twice.
    accept = encode_access(pyrad_values(access_attributes(
        accepted["imsi"], **{"3GPP-IMEISV": "3534900698733101"})))
    reject = encode_access(pyrad_values(access_attributes(suspended["imsi"])))

    with UdpClient() as nas:
        answers = {}
        for name, request in (("accept", accept), ("reject", reject)):
            raw = request.RequestPacket()
            answers[name] = [nas.exchange(raw, radius.auth_port) for _ in range(3)]

    for name, request in (("accept", accept), ("reject", reject)):
        first, *rest = answers[name]
        assert first is not None and rest == [first, first], name
        decode_reply(request, first)
    assert decode_reply(accept, answers["accept"][0]).code == rp.AccessAccept
    assert decode_reply(reject, answers["reject"][0]).code == rp.AccessReject
    history = tenant.admin.get(f"/v1/things/{accepted['id']}/imei-history").json()["items"]
    assert len(history) == 1
    assert len(events_of(tenant.admin, suspended["id"], "thing.attach_rejected")) == 1
    pool = default_pool(tenant.admin)
    assert pool["leased"] == 1, pool
