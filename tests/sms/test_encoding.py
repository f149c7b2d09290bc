"""Segment counting of sms/encoding.py at every boundary (3GPP TS 23.038 / 23.040), without a
server: GSM 7-bit 160 / 153 per part, UCS-2 70 / 67, binary 140 / 134 bytes, at most 10 parts."""

from __future__ import annotations

import pytest

from simplane.sms.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    EncodingError,
    encode_binary,
    encode_text,
    gsm7_septets,
)

CYRILLIC = "Ж"  # one UCS-2 code unit, not in the GSM alphabet
EMOJI = "\U0001F600"  # outside the BMP: a surrogate pair, two UCS-2 code units


def test_the_default_alphabet_has_128_code_points_and_the_extension_table_10() -> None:
    assert len(GSM7_BASIC) == 128 and len(set(GSM7_BASIC)) == 128
    assert GSM7_BASIC.index("@") == 0x00 and GSM7_BASIC.index("\x1b") == 0x1B
    assert GSM7_BASIC.index("¡") == 0x40 and GSM7_BASIC.index("à") == 0x7F
    assert sorted(GSM7_EXTENSION) == sorted("\f^{}\\[~]|€")
    assert not set(GSM7_EXTENSION) & set(GSM7_BASIC)


def test_every_basic_character_is_one_septet_and_every_extension_character_two() -> None:
    basic = GSM7_BASIC.replace("\x1b", "")
    assert gsm7_septets(basic) == 127
    assert gsm7_septets(GSM7_EXTENSION) == 20
    assert encode_text(basic).encoding == "GSM7"
    assert encode_text(GSM7_EXTENSION).encoding == "GSM7"
    # Look-alikes that are not in the alphabet: lower-case c-cedilla, a backtick, a tab.
    for char in ("ç", "`", "\t", "ł", CYRILLIC):
        assert gsm7_septets(char) is None, char


@pytest.mark.parametrize(("length", "segments"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3)])
def test_gsm7_single_and_first_concatenated_boundaries(length: int, segments: int) -> None:
    encoded = encode_text("a" * length)
    assert (encoded.encoding, encoded.units, encoded.segments) == ("GSM7", length, segments)


@pytest.mark.parametrize("n", range(2, 11))
def test_gsm7_153_per_concatenated_part(n: int) -> None:
    assert encode_text("a" * (153 * n)).segments == n
    if n < 10:
        assert encode_text("a" * (153 * n + 1)).segments == n + 1


def test_gsm7_ten_segments_is_the_limit() -> None:
    assert encode_text("a" * 1530).segments == 10
    with pytest.raises(EncodingError, match="11 segments") as raised:
        encode_text("a" * 1531)
    assert raised.value.field == "text"
    assert "1530" in str(raised.value)


def test_escape_characters_count_two_septets() -> None:
    eighty = encode_text("€" * 80)
    assert (eighty.encoding, eighty.units, eighty.segments) == ("GSM7", 160, 1)
    assert encode_text("€" * 81).segments == 2
    assert encode_text("a" * 159 + "€").segments == 2
    assert encode_text("a" * 158 + "€").segments == 1
    assert encode_text("{}[]").units == 8


def test_an_escape_sequence_is_never_split_across_parts() -> None:
    # 152 septets then ESC+€ would straddle septets 153/154: the whole sequence moves to part 2.
    # 306 septets fit 2 × 153 on paper, but part 1 carries 152 and part 2 is full before the
    # last character, so 3 parts.
    assert encode_text("a" * 152 + "€" + "a" * 151).segments == 2
    assert encode_text("a" * 152 + "€" + "a" * 152).segments == 3
    # Ending exactly on a boundary does not split: 151 + 2 = 153.
    assert encode_text("a" * 151 + "€" + "a" * 153).segments == 2


def test_a_straddling_escape_can_push_1530_septets_past_ten_segments() -> None:
    ten = "a" * 152 + "€" + "a" * 151 + "a" * 153 * 8  # parts: 152, 2+151, 8 × 153
    assert gsm7_septets(ten) == 1529
    assert encode_text(ten).segments == 10
    with pytest.raises(EncodingError, match="11 segments") as raised:
        encode_text(ten + "a")
    assert "never split" in str(raised.value)


@pytest.mark.parametrize(("length", "segments"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_single_and_first_concatenated_boundaries(length: int, segments: int) -> None:
    encoded = encode_text(CYRILLIC * length)
    assert (encoded.encoding, encoded.units, encoded.segments) == ("UCS2", length, segments)


@pytest.mark.parametrize("n", range(2, 11))
def test_ucs2_67_per_concatenated_part(n: int) -> None:
    assert encode_text(CYRILLIC * (67 * n)).segments == n
    if n < 10:
        assert encode_text(CYRILLIC * (67 * n + 1)).segments == n + 1


def test_ucs2_ten_segments_is_the_limit() -> None:
    assert encode_text(CYRILLIC * 670).segments == 10
    with pytest.raises(EncodingError, match="11 segments"):
        encode_text(CYRILLIC * 671)


def test_a_character_outside_the_bmp_takes_two_units_and_is_never_split() -> None:
    assert encode_text(EMOJI * 35).units == 70
    assert encode_text(EMOJI * 35).segments == 1
    assert encode_text(EMOJI * 35 + "a").segments == 2
    # 66 + 2 + 66 = 134 units would fit 2 × 67, but the pair may not straddle units 67/68.
    assert encode_text("a" * 66 + EMOJI + "a" * 66).segments == 3
    assert encode_text("a" * 65 + EMOJI + "a" * 67).segments == 2


@pytest.mark.parametrize(("size", "segments"), [(1, 1), (140, 1), (141, 2), (268, 2), (269, 3)])
def test_binary_single_and_first_concatenated_boundaries(size: int, segments: int) -> None:
    encoded = encode_binary(b"\x00" * size)
    assert (encoded.encoding, encoded.units, encoded.segments) == ("BINARY", size, segments)


@pytest.mark.parametrize("n", range(2, 11))
def test_binary_134_bytes_per_concatenated_part(n: int) -> None:
    assert encode_binary(b"\xff" * (134 * n)).segments == n
    if n < 10:
        assert encode_binary(b"\xff" * (134 * n + 1)).segments == n + 1


def test_binary_ten_segments_is_the_limit() -> None:
    assert encode_binary(b"\x01" * 1340).segments == 10
    with pytest.raises(EncodingError, match="11 segments") as raised:
        encode_binary(b"\x01" * 1341)
    assert raised.value.field == "data_base64"


def test_auto_picks_gsm7_when_everything_fits_and_ucs2_for_one_other_character() -> None:
    assert encode_text("Hello {world} €5 @ÄÖÜ").encoding == "GSM7"
    mixed = encode_text("a" * 100 + "ł")
    assert (mixed.encoding, mixed.units, mixed.segments) == ("UCS2", 101, 2)
    # In UCS-2 an extension character is one unit like any other.
    assert encode_text("€" * 69 + CYRILLIC).units == 70


def test_explicit_gsm7_names_the_first_character_that_does_not_fit_and_its_position() -> None:
    with pytest.raises(EncodingError) as raised:
        encode_text("temp 21°C ok", "GSM7")
    message = str(raised.value)
    assert "'°'" in message and "U+00B0" in message and "position 7" in message
    assert raised.value.field == "text"


def test_explicit_ucs2_is_honoured_for_gsm_text() -> None:
    encoded = encode_text("a" * 71, "UCS2")
    assert (encoded.encoding, encoded.segments) == ("UCS2", 2)


def test_empty_content_is_refused() -> None:
    with pytest.raises(EncodingError):
        encode_text("")
    with pytest.raises(EncodingError):
        encode_binary(b"")


def test_nul_is_refused_in_text_naming_its_position() -> None:
    with pytest.raises(EncodingError, match="position 2") as raised:
        encode_text("ab\x00c")
    assert "U+0000" in str(raised.value) and raised.value.field == "text"
