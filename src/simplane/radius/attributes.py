"""Reading 3GPP TS 29.061 attributes out of RADIUS packets into plain values."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyrad.dictionary import Dictionary

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
