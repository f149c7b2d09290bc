"""3GPP-IMEISV as gateways send it (digit string or TBCD octets), the IMEI history and swaps."""

from __future__ import annotations

import pytest
from radius_helpers import access_attributes, events_of, get_thing, radclient, tbcd

# radclient's dictionary (FreeRADIUS dictionary.3gpp) types 3GPP-IMEISV as a string; the raw
# form of the same vendor attribute sends the TBCD octets unchanged.
RAW_IMEISV = "Attr-26.10415.20"


def luhn_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def imei_of(imeisv: str) -> str:
    return imeisv[:14] + luhn_digit(imeisv[:14])


def attach(radius, imsi: str, **overrides: object):  # type: ignore[no-untyped-def]
    run = radclient(radius.auth_port, "auth", access_attributes(imsi, **overrides))
    assert run.reply is not None, str(run)
    return run.reply


def history(client, thing_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get(f"/v1/things/{thing_id}/imei-history")
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.mark.parametrize(("encoding", "imeisv"), [
    ("digits", "3534900698733101"),
    ("tbcd", "3534900698733101"),
    # Every even digit a 3: each TBCD octet is an ASCII digit ("11111111"), still TBCD.
    ("tbcd", "1313131313131313"),
])
def test_the_imeisv_is_recorded_in_either_encoding(radius, tenant, active_things, encoding,  # type: ignore[no-untyped-def]
                                                   imeisv):
    (thing,) = active_things(1)
    attribute = {"3GPP-IMEISV": imeisv} if encoding == "digits" else {
        RAW_IMEISV: "0x" + tbcd(imeisv).hex()}

    assert attach(radius, thing["imsi"], **attribute).code == "Access-Accept"

    imei = imei_of(imeisv)
    assert get_thing(tenant.admin, thing["id"])["imei"] == imei
    (entry,) = history(tenant.admin, thing["id"])
    assert (entry["imei"], entry["imeisv"], entry["previous_imei"], entry["operator"]) == (
        imei, imeisv, None, "20408"), entry
    found = tenant.admin.get("/v1/things", params={"imei": imei}).json()["items"]
    assert [t["id"] for t in found] == [thing["id"]]


def test_a_tbcd_imei_with_filler_is_read(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    imei = "490154203237518"  # 15 digits: the last octet carries the 0xF filler
    assert attach(radius, thing["imsi"], **{RAW_IMEISV: "0x" + tbcd(imei).hex()}).code == \
        "Access-Accept"
    assert get_thing(tenant.admin, thing["id"])["imei"] == imei


def test_an_imei_swap_is_in_the_history_and_raises_an_event(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    old, new = "3534900698733101", "8675309012345607"
    assert imei_of(old) == "353490069873319"  # the check digit, worked by hand
    assert attach(radius, thing["imsi"], **{"3GPP-IMEISV": old}).code == "Access-Accept"
    # The same device again (another software version) is no swap.
    assert attach(radius, thing["imsi"], **{"3GPP-IMEISV": old[:14] + "02"}).code == \
        "Access-Accept"
    # The new device, in Belgium, reported as TBCD by that gateway.
    assert attach(radius, thing["imsi"], **{RAW_IMEISV: "0x" + tbcd(new).hex(),
                                            "3GPP-SGSN-MCC-MNC": "20601"}).code == "Access-Accept"

    entries = sorted(history(tenant.admin, thing["id"]), key=lambda e: e["observed_at"])
    assert [(e["imei"], e["previous_imei"], e["operator"]) for e in entries] == [
        (imei_of(old), None, "20408"), (imei_of(new), imei_of(old), "20601")], entries
    assert entries[1]["observed_at"] >= entries[0]["observed_at"]
    assert get_thing(tenant.admin, thing["id"])["imei"] == imei_of(new)

    changed = sorted(events_of(tenant.admin, thing["id"], "thing.imei_changed"),
                     key=lambda e: e["occurred_at"])
    assert [(e["data"]["previous_imei"], e["data"]["imei"]) for e in changed] == [
        (None, imei_of(old)), (imei_of(old), imei_of(new))], changed
    assert changed[1]["data"]["operator"] == "20601"


def test_with_imei_lock_only_the_recorded_device_attaches(radius, tenant, active_things):  # type: ignore[no-untyped-def]
    (thing,) = active_things(1)
    device, other = "3534900698733101", "8675309012345607"
    assert attach(radius, thing["imsi"], **{"3GPP-IMEISV": device}).code == "Access-Accept"
    response = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"imei_lock": True})
    assert response.status_code == 200 and response.json()["imei_lock"] is True

    refused = attach(radius, thing["imsi"], **{RAW_IMEISV: "0x" + tbcd(other).hex()})
    assert refused.code == "Access-Reject"
    assert refused.get("Reply-Message").startswith("imei_mismatch:")
    # Refused, so not recorded as the Thing's device.
    assert get_thing(tenant.admin, thing["id"])["imei"] == imei_of(device)
    assert len(history(tenant.admin, thing["id"])) == 1
    assert attach(radius, thing["imsi"], **{"3GPP-IMEISV": device}).code == "Access-Accept"
