"""SIM and device identifiers: ICCID (ITU-T E.118), IMSI (E.212) and IMEI (3GPP TS 23.003)."""

from __future__ import annotations

import secrets


def luhn_check_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:  # doubled: the rightmost payload digit sits next to the check digit
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


def iccid_problem(iccid: str) -> str | None:
    if not iccid.isdigit() or not 19 <= len(iccid) <= 20:
        return f"ICCID {iccid!r} must be 19 or 20 digits"
    if not iccid.startswith("89"):
        return f"ICCID {iccid!r} must start with 89 (telecommunications)"
    if not luhn_valid(iccid):
        return f"ICCID {iccid!r} has a wrong Luhn check digit"
    return None


def imsi_problem(imsi: str) -> str | None:
    if not imsi.isdigit() or len(imsi) != 15:
        return f"IMSI {imsi!r} must be 15 digits"
    return None


def imei_problem(imei: str) -> str | None:
    if not imei.isdigit() or len(imei) != 15:
        return f"IMEI {imei!r} must be 15 digits"
    if not luhn_valid(imei):
        return f"IMEI {imei!r} has a wrong Luhn check digit"
    return None


def imei_from_imeisv(imeisv: str) -> str:
    """IMEISV (TAC + serial + 2-digit software version) to IMEI with its computed check digit."""
    body = imeisv[:14]
    return body + luhn_check_digit(body)


def random_iccid(issuer: str = "8931") -> str:
    body = issuer + "".join(str(secrets.randbelow(10)) for _ in range(18 - len(issuer)))
    return body + luhn_check_digit(body)


def random_imsi(plmn: str = "20404") -> str:
    return plmn + "".join(str(secrets.randbelow(10)) for _ in range(15 - len(plmn)))
