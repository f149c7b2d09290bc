"""RFC 5176 Disconnect-Request to the session's NAS: when it is sent, what it carries, and the
outcome recorded on the session."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from radius_helpers import (
    access_attributes,
    accounting_attributes,
    new_session_id,
    patch_thing,
    radclient,
    second_network,
    sessions_of,
    wait_for,
)


def attached(radius, thing: dict, nas: str = "127.0.0.1") -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Attach and start a session on the NAS at `nas`; (address, Acct-Session-Id)."""
    run = radclient(radius.auth_port, "auth", access_attributes(thing["imsi"]))
    assert run.reply is not None and run.reply.code == "Access-Accept", str(run)
    address = run.reply.get("Framed-IP-Address")
    session_id = new_session_id()
    run = radclient(radius.acct_port, "acct", accounting_attributes(
        thing["imsi"], "Start", session_id,
        **{"Framed-IP-Address": address, "NAS-IP-Address": nas}))
    assert run.reply is not None and run.reply.code == "Accounting-Response", str(run)
    return address, session_id  # type: ignore[return-value]


def disconnect_outcome(client, thing_id: str, wanted: str) -> dict:  # type: ignore[no-untyped-def]
    def settled() -> dict | None:
        (record,) = sessions_of(client, thing_id)
        return record if record["disconnect"]["status"] == wanted else None

    return wait_for(settled, f"disconnect status {wanted}")  # type: ignore[return-value]


def test_suspending_sends_a_disconnect_request_that_the_nas_acknowledges(
        radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    address, session_id = attached(radius, thing)

    patch_thing(tenant.admin, thing["id"], {"state": "SUSPENDED"})

    (request,) = wait_for(lambda: radius.nas.requests_for(session_id), "a Disconnect-Request")
    assert request.authentic, "Request Authenticator / Message-Authenticator do not verify"
    assert request.packet.message_authenticator
    assert request.attribute("User-Name") == thing["imsi"]
    assert request.attribute("Framed-IP-Address") == address
    record = disconnect_outcome(tenant.admin, thing["id"], "ACKED")
    assert record["disconnect"]["reason"] == "suspended"
    assert record["disconnect"]["attempts"] == 1 and record["disconnect"]["at"] is not None


def test_the_disconnect_route_answers_202_and_the_nas_acknowledges(
        radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    _, session_id = attached(radius, thing)
    (record,) = sessions_of(tenant.admin, thing["id"])

    response = tenant.admin.post(f"/v1/things/{thing['id']}/disconnect")

    assert response.status_code == 202, response.text
    assert response.json()["session_ids"] == [record["id"]]
    wait_for(lambda: radius.nas.requests_for(session_id), "a Disconnect-Request")
    assert disconnect_outcome(tenant.admin, thing["id"], "ACKED")["disconnect"]["reason"] == "api"


def test_disconnecting_a_thing_without_a_session_is_refused(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    response = tenant.admin.post(f"/v1/things/{thing['id']}/disconnect")
    assert response.status_code == 412, response.text
    assert response.json()["code"] == "not_attached"


def test_a_nas_that_never_answers_is_retried_then_recorded_as_timeout(
        radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    _, session_id = attached(radius, thing)
    radius.nas.answer[session_id] = "NONE"

    response = tenant.admin.post(f"/v1/things/{thing['id']}/disconnect")
    assert response.status_code == 202, response.text

    record = disconnect_outcome(tenant.admin, thing["id"], "TIMEOUT")
    copies = radius.nas.requests_for(session_id)
    assert len(copies) == radius.settings.radius_disconnect_retries
    assert len({c.packet.raw_packet for c in copies}) == 1, "a retry resends the same request"
    assert record["status"] == "OPEN"  # the NAS never confirmed


def test_a_nas_with_no_listener_is_recorded_as_timeout(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    # Nothing listens on 127.0.0.2 (the test NAS binds 127.0.0.1 only): the port is closed.
    (thing,) = active_things(1)
    _, session_id = attached(radius, thing, nas="127.0.0.2")
    patch_thing(tenant.admin, thing["id"], {"state": "SUSPENDED"})
    record = disconnect_outcome(tenant.admin, thing["id"], "TIMEOUT")
    assert record["nas_address"] == "127.0.0.2" and record["disconnect"]["attempts"] == 1
    assert radius.nas.requests_for(session_id) == []


def test_a_nak_is_recorded(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    _, session_id = attached(radius, thing)
    radius.nas.answer[session_id] = "NAK"
    assert tenant.admin.post(f"/v1/things/{thing['id']}/disconnect").status_code == 202
    disconnect_outcome(tenant.admin, thing["id"], "NAKED")


def _retire(client, thing: dict) -> None:  # type: ignore[no-untyped-def]
    patch_thing(client, thing["id"], {"state": "RETIRED"})


def _data_off(client, thing: dict) -> None:  # type: ignore[no-untyped-def]
    patch_thing(client, thing["id"], {"services": {"data": False}})


def _move(client, thing: dict) -> None:  # type: ignore[no-untyped-def]
    _, _, group = second_network(client)
    patch_thing(client, thing["id"], {"things_group_id": group["id"]})


TRIGGERS: dict[str, Callable[..., None]] = {
    "retired": _retire, "data_disabled": _data_off, "moved_network": _move}


@pytest.mark.parametrize("reason", list(TRIGGERS))
def test_other_changes_that_end_the_session(radius, tenant, active_things, reason):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    _, session_id = attached(radius, thing)

    TRIGGERS[reason](tenant.admin, thing)

    (request,) = wait_for(lambda: radius.nas.requests_for(session_id), "a Disconnect-Request")
    assert request.authentic and request.attribute("User-Name") == thing["imsi"]
    assert disconnect_outcome(tenant.admin, thing["id"], "ACKED")["disconnect"]["reason"] == \
        reason


def test_a_move_within_the_same_network_keeps_the_session(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    _, session_id = attached(radius, thing)
    group = tenant.admin.post("/v1/things-groups", json={"name": "Same network"})
    assert group.status_code == 201, group.text

    patch_thing(tenant.admin, thing["id"], {"things_group_id": group.json()["id"]})

    # The outbox row is written in the PATCH's own transaction: none means none will be sent.
    (record,) = sessions_of(tenant.admin, thing["id"])
    assert record["status"] == "OPEN" and record["disconnect"]["status"] is None, record
    assert radius.nas.requests_for(session_id) == []
