"""SMS encodings and segment counting (3GPP TS 23.038 / 23.040).

GSM 7-bit default alphabet: 160 septets in one message, 153 per part when concatenated (the
user data header takes 7 septets); characters of the extension table are sent as ESC + char
and count twice. UCS-2: 70 characters, 67 per part. Binary (8-bit): 140 bytes, 134 per part.
"""

from __future__ import annotations

from dataclasses import dataclass

# TS 23.038 §6.2.1, the default alphabet in code order (0x1B is the escape to the extension).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"
_BASIC = frozenset(GSM7_BASIC) - {"\x1b"}
_EXTENDED = frozenset(GSM7_EXTENSION)

MAX_SEGMENTS = 10
LIMITS = {  # encoding: (single message, per concatenated part), in septets / chars / bytes
    "GSM7": (160, 153),
    "UCS2": (70, 67),
    "BINARY": (140, 134),
}


class EncodingError(ValueError):
    def __init__(self, message: str, field: str = "text") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Encoded:
    encoding: str
    units: int  # septets (GSM7), UTF-16 code units (UCS2) or bytes (BINARY)
    segments: int


def gsm7_septets(text: str) -> int | None:
    """Septets needed in the GSM 7-bit alphabet, or None when a character does not fit."""
    count = 0
    for char in text:
        if char in _BASIC:
            count += 1
        elif char in _EXTENDED:
            count += 2
        else:
            return None
    return count


def first_non_gsm7(text: str) -> tuple[int, str] | None:
    for index, char in enumerate(text):
        if char not in _BASIC and char not in _EXTENDED:
            return index, char
    return None


def ucs2_units(text: str) -> int:
    # Characters beyond the BMP take a surrogate pair: two UCS-2 code units.
    return len(text.encode("utf-16-le")) // 2


def segments_for(encoding: str, units: int) -> int:
    single, part = LIMITS[encoding]
    if units <= single:
        return 1
    return -(-units // part)


def _parts(encoding: str, text: str, total: int, width) -> int:  # type: ignore[no-untyped-def]
    """Concatenated parts may not split a character's units (a GSM7 escape sequence, a UCS-2
    surrogate pair), so count part by part."""
    single, part_limit = LIMITS[encoding]
    if total <= single:
        return 1
    parts, used = 1, 0
    for char in text:
        units = width(char)
        if used + units > part_limit:
            parts += 1
            used = 0
        used += units
    return parts


def _gsm7_segments(text: str) -> int:
    return _parts("GSM7", text, gsm7_septets(text) or 0,
                  lambda char: 2 if char in _EXTENDED else 1)


def encode_text(text: str, requested: str = "AUTO") -> Encoded:
    if text == "":
        raise EncodingError("text must not be empty")
    if "\x00" in text:
        # Not storable as text on PostgreSQL, and no GSM or UCS-2 text needs it.
        raise EncodingError(f"character U+0000 (NUL) at position {text.index(chr(0))} cannot "
                            "be sent as text; send such content as data_base64")
    if requested in ("AUTO", "GSM7"):
        septets = gsm7_septets(text)
        if septets is not None:
            encoded = Encoded("GSM7", septets, _gsm7_segments(text))
            return _check(encoded)
        if requested == "GSM7":
            index, char = first_non_gsm7(text)  # type: ignore[misc]
            raise EncodingError(f"character {char!r} (U+{ord(char):04X}) at position {index} is "
                                "not in the GSM 7-bit alphabet; use encoding UCS2 or AUTO")
    if requested not in ("AUTO", "UCS2"):
        raise EncodingError(f"encoding {requested} does not take text; use data_base64",
                            "encoding")
    units = ucs2_units(text)
    return _check(Encoded("UCS2", units, _parts(
        "UCS2", text, units, lambda char: 2 if ord(char) > 0xFFFF else 1)))


def encode_binary(data: bytes) -> Encoded:
    if not data:
        raise EncodingError("data_base64 must not be empty", "data_base64")
    return _check(Encoded("BINARY", len(data), segments_for("BINARY", len(data))), "data_base64")


def _check(encoded: Encoded, field: str = "text") -> Encoded:
    if encoded.segments > MAX_SEGMENTS:
        _single, part = LIMITS[encoded.encoding]
        unit = {"GSM7": "septets", "UCS2": "UCS-2 code units", "BINARY": "bytes"}[
            encoded.encoding]
        # Within the nominal size yet over the limit: a character's units may not straddle
        # two parts, so some parts carry fewer than the maximum.
        why = ("; an escape sequence or surrogate pair is never split across parts"
               if encoded.units <= MAX_SEGMENTS * part else "")
        raise EncodingError(
            f"the message needs {encoded.segments} segments ({encoded.units} {unit} in "
            f"{encoded.encoding}); at most {MAX_SEGMENTS} are allowed "
            f"({MAX_SEGMENTS * part} {unit}){why}", field)
    return encoded
