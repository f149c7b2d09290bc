"""The listener reads RADIUS requests without pyrad's Packet: it must read what pyrad reads,
accept and refuse what pyrad does, and answer byte for byte as pyrad would."""

from __future__ import annotations

import pytest
from pyrad import packet as rp

from simplane.radius.attributes import (
    MESSAGE_AUTHENTICATOR,
    ReceivedAttributes,
    access_reply,
    accounting_authentic,
    accounting_response,
    encode_value,
    load_dictionary,
    message_authenticator_ok,
    parse_access,
    parse_accounting,
)

SECRET = b"testing123"
DICTIONARY = load_dictionary()


def _request(**attributes: object) -> bytes:
    packet = rp.AcctPacket(code=rp.AccountingRequest, id=7, secret=SECRET, dict=DICTIONARY)
    for name, value in attributes.items():
        packet[name.replace("_", "-")] = value
    return packet.RequestPacket()


CASES = {
    "stop": _request(Acct_Status_Type="Stop", Acct_Session_Id="s-1", User_Name="901700000000001",
                     **{"3GPP-IMSI": "901700000000001", "3GPP-SGSN-MCC-MNC": "20408",
                        "3GPP-RAT-Type": 6, "3GPP-IMEISV": b"3569380300000101"},
                     Framed_IP_Address="10.0.0.9", Acct_Input_Octets=5, Acct_Output_Octets=7,
                     Acct_Input_Gigawords=1, Acct_Terminate_Cause=1, Event_Timestamp=1_700_000_000,
                     NAS_IP_Address="192.0.2.1", NAS_Identifier="pgw"),
    "unnamed values": _request(Acct_Status_Type=15, Acct_Terminate_Cause=99,
                               User_Name=b"\xff\xfe"),
    "accounting-on": _request(Acct_Status_Type="Accounting-On"),
    "padding": _request(Acct_Status_Type="Start", Acct_Session_Id="s-2") + b"\x00pad",
}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_an_accounting_request_reads_and_answers_as_with_pyrad(data: bytes) -> None:
    reference = rp.AcctPacket(packet=data, secret=SECRET, dict=DICTIONARY)
    received = ReceivedAttributes(DICTIONARY, data)
    assert parse_accounting(received, "127.0.0.1") == parse_accounting(reference, "127.0.0.1")
    assert accounting_authentic(received, SECRET) is reference.VerifyAcctRequest() is True
    assert not accounting_authentic(received, b"another secret")
    reply = reference.CreateReply()
    reply.code = rp.AccountingResponse
    assert accounting_response(received, SECRET) == reply.ReplyPacket()


def test_the_answer_carries_the_proxy_states_in_order() -> None:
    packet = rp.AcctPacket(code=rp.AccountingRequest, id=9, secret=SECRET, dict=DICTIONARY)
    packet["Acct-Status-Type"] = "Interim-Update"
    packet[33] = [b"first", b"\x00second"]
    data = packet.RequestPacket()
    reply = rp.AcctPacket(packet=data, secret=SECRET, dict=DICTIONARY).CreateReply()
    reply.code = rp.AccountingResponse
    answer = accounting_response(ReceivedAttributes(DICTIONARY, data), SECRET)
    assert answer == reply.ReplyPacket()
    assert b"\x00second" in answer


@pytest.mark.parametrize("data", [b"\x04\x01\x00\x10" + bytes(16),  # length below 20
                                  b"\x04\x01\x00\x20" + bytes(16),  # longer than the datagram
                                  b"\x04\x01\x00\x17" + bytes(16) + b"\x01\x01\x00"])
def test_a_corrupt_datagram_is_refused_as_pyrad_refuses_it(data: bytes) -> None:
    with pytest.raises(rp.PacketError):
        rp.AcctPacket(packet=data, secret=SECRET, dict=DICTIONARY)
    with pytest.raises(rp.PacketError):
        ReceivedAttributes(DICTIONARY, data)


def _access_request(proxy_states: list[bytes], *, signed: bool = True) -> bytes:
    packet = rp.AuthPacket(code=rp.AccessRequest, id=11, secret=SECRET, dict=DICTIONARY)
    for name, value in {"User-Name": "901700000000001", "3GPP-IMSI": "901700000000001",
                        "Called-Station-Id": "simplane.m2m", "3GPP-SGSN-MCC-MNC": "20408",
                        "3GPP-RAT-Type": 6, "3GPP-IMEISV": b"3569380300000101",
                        "NAS-IP-Address": "192.0.2.1"}.items():
        packet[name] = value
    if proxy_states:
        packet[33] = proxy_states
    if signed:
        packet.add_message_authenticator()
    return packet.RequestPacket()


@pytest.mark.parametrize("proxy_states", [[], [b"first", b"\x00second"]])
@pytest.mark.parametrize("accepted", [True, False])
def test_an_access_request_reads_and_answers_as_with_pyrad(proxy_states: list[bytes],
                                                           accepted: bool) -> None:
    data = _access_request(proxy_states)
    reference = rp.AuthPacket(packet=data, secret=SECRET, dict=DICTIONARY)
    received = ReceivedAttributes(DICTIONARY, data)
    assert parse_access(received, "127.0.0.1") == parse_access(reference, "127.0.0.1")
    assert message_authenticator_ok(received, SECRET) is reference.verify_message_authenticator()
    assert reference.verify_message_authenticator() is True
    assert not message_authenticator_ok(received, b"another secret")
    reply = reference.CreateReply()
    values = []
    if accepted:
        reply.code = rp.AccessAccept
        reply["Framed-IP-Address"] = "10.0.3.4"
        reply["Acct-Interim-Interval"] = 600
        values = [encode_value(DICTIONARY, "Framed-IP-Address", "10.0.3.4"),
                  encode_value(DICTIONARY, "Acct-Interim-Interval", 600)]
    else:
        reply.code = rp.AccessReject
    reply["Reply-Message"] = "accepted" if accepted else "not_active: the SIM is not ACTIVE"
    values.append(encode_value(DICTIONARY, "Reply-Message", reply["Reply-Message"][0]))
    reply.add_message_authenticator()
    assert access_reply(received, SECRET, reply.code, values) == reply.ReplyPacket()


def test_a_tampered_or_unsigned_access_request_is_seen_as_pyrad_sees_it() -> None:
    tampered = bytearray(_access_request([]))
    tampered[-1] ^= 1
    reference = rp.AuthPacket(packet=bytes(tampered), secret=SECRET, dict=DICTIONARY)
    received = ReceivedAttributes(DICTIONARY, bytes(tampered))
    assert message_authenticator_ok(received, SECRET) is reference.verify_message_authenticator()
    unsigned = _access_request([], signed=False)
    assert MESSAGE_AUTHENTICATOR not in ReceivedAttributes(DICTIONARY, unsigned)
    assert not rp.AuthPacket(packet=unsigned, secret=SECRET, dict=DICTIONARY).message_authenticator
