"""Reading 3GPP TS 29.061 attributes out of RADIUS packets into plain values."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from pyrad import tools
from pyrad.dictionary import Dictionary
from pyrad.packet import PacketError

from ..things.identifiers import imei_from_imeisv, luhn_valid

DICTIONARY_PATH = Path(__file__).with_name("dictionary")

# 3GPP-RAT-Type values (TS 29.061 §16.4.7) served, and the names the API shows.
RAT_NAMES = {2: "2G", 1: "3G", 5: "3G", 6: "4G", 9: "LTE-M"}
RAT_LABELS = {1: "UTRAN", 2: "GERAN", 5: "HSPA Evolution", 6: "EUTRAN", 8: "NB-IoT", 9: "LTE-M"}
# Coverage (api.md §3): the serving network's MCC decides the country.
SERVED_MCC = {"204": "NL", "206": "BE", "270": "LU"}


def load_dictionary() -> Dictionary:
    return Dictionary(str(DICTIONARY_PATH))


def _first(packet, name: str):  # type: ignore[no-untyped-def]
    if isinstance(packet, ReceivedAttributes):
        return packet.first(name)
    try:
        values = packet[name]
    except KeyError:
        return None
    return values[0] if values else None


def decode_imeisv(raw: bytes | str | None) -> str | None:
    """3GPP-IMEISV as ASCII digits, or as TBCD octets (two digits a byte, low nibble first)."""
    if raw is None:
        return None
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    text = data.decode("ascii", "replace").strip("\x00 ")
    # Eight octets are TBCD even when every octet happens to be an ASCII digit (an IMEISV whose
    # even digits are all 3): no digit-string IMEI(SV) is eight characters long.
    if text.isdigit() and len(data) != 8:
        return text
    digits = []
    for byte in data:
        for nibble in (byte & 0x0F, byte >> 4):
            if nibble == 0x0F:
                continue
            if nibble > 9:
                return None
            digits.append(str(nibble))
    return "".join(digits) or None


def imei_of(imeisv_or_imei: str | None) -> str | None:
    """The 15-digit IMEI (TAC + serial + Luhn) for a reported IMEISV (16) or IMEI (15/14)."""
    if imeisv_or_imei is None or not imeisv_or_imei.isdigit():
        return None
    if len(imeisv_or_imei) == 16 or len(imeisv_or_imei) == 14:
        return imei_from_imeisv(imeisv_or_imei)
    if len(imeisv_or_imei) == 15:
        return imeisv_or_imei if luhn_valid(imeisv_or_imei) else imei_from_imeisv(imeisv_or_imei)
    return None


@dataclass(frozen=True)
class AccessRequest:
    imsi: str | None
    called_station_id: str | None
    sgsn_mcc_mnc: str | None
    rat_type: int | None
    imeisv: str | None
    nas_address: str


@dataclass(frozen=True)
class AccountingRequest:
    status_type: int
    acct_session_id: str | None
    imsi: str | None
    framed_ip: str | None
    input_octets: int
    output_octets: int
    event_time: datetime | None
    sgsn_mcc_mnc: str | None
    rat_type: int | None
    imeisv: str | None
    terminate_cause: int | None
    nas_address: str
    nas_identifier: str | None


def _imsi(packet) -> str | None:  # type: ignore[no-untyped-def]
    imsi = _first(packet, "3GPP-IMSI")
    if imsi is None:
        user = _first(packet, "User-Name")
        if isinstance(user, str) and user.isdigit() and len(user) == 15:
            imsi = user
    return imsi if isinstance(imsi, str) else None


def _rat(packet) -> int | None:  # type: ignore[no-untyped-def]
    value = _first(packet, "3GPP-RAT-Type")
    if isinstance(value, bytes):
        return value[0] if value else None
    return int(value) if value is not None else None


def _nas(packet, source: str) -> str:  # type: ignore[no-untyped-def]
    value = _first(packet, "NAS-IP-Address")
    if isinstance(value, str):  # pyrad decodes an ipaddr attribute to its dotted text
        return value
    return str(ipaddress.IPv4Address(value)) if value else source


def parse_access(packet, source: str) -> AccessRequest:  # type: ignore[no-untyped-def]
    return AccessRequest(
        imsi=_imsi(packet), called_station_id=_first(packet, "Called-Station-Id"),
        sgsn_mcc_mnc=_first(packet, "3GPP-SGSN-MCC-MNC"), rat_type=_rat(packet),
        imeisv=decode_imeisv(_first(packet, "3GPP-IMEISV")), nas_address=_nas(packet, source))


def _octets(packet, name: str) -> int:  # type: ignore[no-untyped-def]
    low = int(_first(packet, f"Acct-{name}-Octets") or 0)
    high = int(_first(packet, f"Acct-{name}-Gigawords") or 0)
    return high * 2**32 + low


def parse_accounting(packet, source: str) -> AccountingRequest:  # type: ignore[no-untyped-def]
    status = _first(packet, "Acct-Status-Type")
    if isinstance(status, str):
        status = {"Start": 1, "Stop": 2, "Interim-Update": 3, "Accounting-On": 7,
                  "Accounting-Off": 8}.get(status, 0)
    stamp = _first(packet, "Event-Timestamp")
    return AccountingRequest(
        status_type=int(status or 0), acct_session_id=_first(packet, "Acct-Session-Id"),
        imsi=_imsi(packet), framed_ip=_first(packet, "Framed-IP-Address"),
        input_octets=_octets(packet, "Input"), output_octets=_octets(packet, "Output"),
        event_time=datetime.fromtimestamp(int(stamp), UTC) if stamp else None,
        sgsn_mcc_mnc=_first(packet, "3GPP-SGSN-MCC-MNC"), rat_type=_rat(packet),
        imeisv=decode_imeisv(_first(packet, "3GPP-IMEISV")),
        terminate_cause=_first(packet, "Acct-Terminate-Cause"),
        nas_address=_nas(packet, source), nas_identifier=_first(packet, "NAS-Identifier"))


class ReceivedAttributes(dict):  # type: ignore[type-arg]
    """The attributes of a received packet, read by name as a pyrad `Packet` reads them (the
    same keys, the same decoding: pyrad's own `tools.DecodeAttr` and the dictionary's VALUE
    names), without building the `Packet`: decoding a datagram through pyrad was most of the
    listener's CPU per Accounting-Request. Only plain attributes: our dictionary has no TLVs
    and nothing read here is encrypted."""

    def __init__(self, dictionary: Dictionary, packet: bytes) -> None:
        super().__init__()
        self.dictionary = dictionary
        # pyrad's `Packet.DecodePacket`, step for step, with its errors.
        try:
            (length,) = struct.unpack("!H", packet[2:4])
        except struct.error:
            raise PacketError("Packet header is corrupt") from None
        if len(packet) < 20 or length < 20 or len(packet) < length:
            raise PacketError("Packet has invalid length")
        if length > 8192:
            raise PacketError("Packet length is too long (%d)" % length)
        self.raw_packet = packet = packet[:length]
        position = 20
        while position < length:
            if length - position < 2:
                raise PacketError("Attribute header is corrupt")
            key, attribute_length = packet[position], packet[position + 1]
            if attribute_length < 2:
                raise PacketError("Attribute length is too small (%d)" % attribute_length)
            value = packet[position + 2:position + attribute_length]
            if key == 26:
                for vendor_key, vendor_value in _vendor_attributes(value):
                    self.setdefault(vendor_key, []).append(vendor_value)
            else:
                self.setdefault(key, []).append(value)
            position += attribute_length

    def __getitem__(self, name: str) -> list[Any]:  # type: ignore[override]
        key, decode = _decoder(self.dictionary, name)
        return [decode(v) for v in dict.__getitem__(self, key)]

    def first(self, name: str) -> Any:
        """`self[name][0]`, None when the packet lacks it or the dictionary the name: what the
        parsers read, one value of a dozen attributes a packet, without a list each. Every
        value is decoded, so a malformed repeat fails the packet as `self[name]` does."""
        try:
            key, decode = _decoder(self.dictionary, name)
        except KeyError:
            return None
        values = dict.get(self, key)
        if not values:
            return None
        first = decode(values[0])
        for value in values[1:]:
            decode(value)
        return first


def _vendor_attributes(data: bytes) -> list[tuple[Any, bytes]]:
    # pyrad's `_PktDecodeVendorAttribute`: a Vendor-Specific attribute in the RFC 2865 form is
    # split into (vendor, type) keys; anything else is kept whole under 26.
    if len(data) < 6:
        return [(26, data)]
    (vendor,) = struct.unpack("!L", data[:4])
    attributes = []
    position = 4
    while position < len(data):
        if len(data) - position < 2:
            return [(26, data)]
        code, length = data[position], data[position + 1]
        if length < 2 or position + length > len(data):
            return [(26, data)]
        attributes.append(((vendor, code), data[position + 2:position + length]))
        position += length
    return attributes


@lru_cache(maxsize=256)
def _attribute(dictionary: Dictionary, name: str) -> tuple[Any, Any]:
    # pyrad's `Packet._EncodeKey`: a vendor's attribute is keyed by (vendor id, code).
    attribute = dictionary.attributes[name]
    if attribute.vendor and not attribute.is_sub_attribute:
        return (dictionary.vendors.GetForward(attribute.vendor), attribute.code), attribute
    return attribute.code, attribute


def _decode_address(value: bytes) -> str:
    # pyrad's `tools.DecodeAddress` (its check, the same text) without `ipaddress`.
    tools._CheckLength(value, 4, "ipaddr")
    return socket.inet_ntoa(value)


# pyrad's `tools.DecodeAttr` for the types a received packet's attributes have, resolved once
# per attribute instead of by its chain of comparisons per value.
_DECODERS = {"string": tools.DecodeString, "octets": tools.DecodeOctets,
             "integer": tools.DecodeInteger, "date": tools.DecodeDate,
             "ipaddr": _decode_address}


@lru_cache(maxsize=256)
def _decoder(dictionary: Dictionary, name: str) -> tuple[Any, Callable[[bytes], Any]]:
    """The key of the attribute `name` and how a value of it decodes: as a pyrad `Packet`
    reads it, the dictionary's VALUE name where it has one, else `tools.DecodeAttr`."""
    key, attribute = _attribute(dictionary, name)
    decode = _DECODERS.get(attribute.type) or partial(tools.DecodeAttr, attribute.type)
    names = attribute.values
    if names.backward:
        def named(value: bytes) -> Any:
            return names.GetBackward(value) if names.HasBackward(value) else decode(value)
        return key, named
    return key, decode


ACCOUNTING_RESPONSE, PROXY_STATE = 5, 33


def accounting_authentic(attributes: ReceivedAttributes, secret: bytes) -> bool:
    """pyrad's `AcctPacket.VerifyAcctRequest` (RFC 2866 section 3) for an Accounting-Request."""
    packet = attributes.raw_packet
    expected = hashlib.md5(packet[0:4] + 16 * b"\x00" + packet[20:] + secret).digest()
    return hmac.compare_digest(expected, packet[4:20])


def accounting_response(request: ReceivedAttributes, secret: bytes) -> bytes:
    """pyrad's `CreateReply().ReplyPacket()` of an Accounting-Response: no attributes but the
    request's Proxy-States, unmodified and in order (RFC 2865 section 5.33)."""
    packet = request.raw_packet
    attributes = b"".join(struct.pack("!BB", PROXY_STATE, len(value) + 2) + value
                          for value in dict.get(request, PROXY_STATE, ()))
    header = struct.pack("!BBH", ACCOUNTING_RESPONSE, packet[1], 20 + len(attributes))
    authenticator = hashlib.md5(header + packet[4:20] + attributes + secret).digest()
    return header + authenticator + attributes


ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
MESSAGE_AUTHENTICATOR = 80
_EMPTY_MESSAGE_AUTHENTICATOR = struct.pack("!BB", MESSAGE_AUTHENTICATOR, 18) + 16 * b"\x00"


def message_authenticator_ok(request: ReceivedAttributes, secret: bytes) -> bool:
    """pyrad's `verify_message_authenticator` for a received Access-Request that carries one
    (RFC 2869 section 5.14): the HMAC over the datagram with the first Message-Authenticator's
    value zeroed."""
    packet = request.raw_packet
    attributes = packet[20:]
    position = 0
    while position + 2 <= len(attributes):
        code, length = attributes[position], attributes[position + 1]
        if length < 2:
            break
        if code == MESSAGE_AUTHENTICATOR:
            attributes = (attributes[:position + 2] + 16 * b"\x00"
                          + attributes[position + length:])
            break
        position += length
    header = struct.pack("!BBH", packet[0], packet[1], 20 + len(attributes))
    expected = hmac.new(secret, header + packet[4:20] + attributes, "md5").digest()
    return hmac.compare_digest(dict.__getitem__(request, MESSAGE_AUTHENTICATOR)[0], expected)


def access_reply(request: ReceivedAttributes, secret: bytes, code: int,
                 attributes: list[tuple[int, bytes]]) -> bytes:
    """pyrad's `CreateReply()` + `add_message_authenticator()` + `ReplyPacket()` for an
    Access-Accept or -Reject with these attributes (code, encoded value): the
    Message-Authenticator first, the request's Proxy-States, then the attributes."""
    packet = request.raw_packet
    rest = b"".join(
        struct.pack("!BB", key, len(value) + 2) + value
        for key, value in [*((PROXY_STATE, v) for v in dict.get(request, PROXY_STATE, ())),
                           *attributes])
    header = struct.pack("!BBH", code, packet[1], 20 + len(_EMPTY_MESSAGE_AUTHENTICATOR) + len(rest))
    signature = hmac.new(secret, header + packet[4:20] + _EMPTY_MESSAGE_AUTHENTICATOR + rest,
                         "md5").digest()
    encoded = _EMPTY_MESSAGE_AUTHENTICATOR[:2] + signature + rest
    return header + hashlib.md5(header + packet[4:20] + encoded + secret).digest() + encoded


def encode_value(dictionary: Dictionary, name: str, value: object) -> tuple[int, bytes]:
    """An attribute of a reply as pyrad encodes it (a plain, non-vendor attribute)."""
    key, attribute = _attribute(dictionary, name)
    encoded = tools.EncodeAttr(attribute.type, value)
    if len(encoded) > 253:
        raise ValueError(f"{name} is longer than an attribute holds")
    return key, encoded
