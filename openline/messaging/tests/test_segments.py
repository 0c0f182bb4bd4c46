import gsm0338  # noqa: F401  (registers the "gsm03.38" codec used as a cross-check)
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openline.messaging.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SegmentInfo,
    count_segments,
    split_segments,
)

CYRILLIC = "ж"  # BMP, not GSM -> 1 UCS-2 unit
EMOJI = "😀"  # astral -> 2 UCS-2 units (surrogate pair)


def _units(part: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return len(part) + sum(1 for ch in part if ch in GSM7_EXTENSION)
    return len(part.encode("utf-16-le")) // 2


# --- GSM-7 boundaries -------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (159, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_plain_gsm_text_segments_at_160_then_153(length, segments):
    info = count_segments("a" * length)
    assert info.encoding == "GSM-7"
    assert info.units == length
    assert info.segments == segments
    assert len(split_segments("a" * length)) == segments


def test_single_segment_reports_160_limit_and_remaining():
    assert count_segments("a" * 150) == SegmentInfo("GSM-7", 1, 150, 160, 10, ())
    assert count_segments("a" * 160).remaining == 0


def test_multipart_reports_153_limit_and_remaining_in_last_part():
    info = count_segments("a" * 161)
    assert (info.per_segment, info.remaining) == (153, 153 - 8)
    assert count_segments("a" * 306).remaining == 0


def test_empty_body_is_one_segment():
    assert count_segments("") == SegmentInfo("GSM-7", 1, 0, 160, 160, ())
    assert split_segments("") == [""]


def test_extension_chars_cost_two_septets():
    for ch in "^{}\\[~]|€\x0c":
        info = count_segments(ch)
        assert (info.encoding, info.units) == ("GSM-7", 2), repr(ch)


def test_extension_char_pushes_message_over_single_segment():
    info = count_segments("a" * 159 + "€")
    assert (info.units, info.segments) == (161, 2)


def test_eighty_euro_signs_fill_exactly_one_segment():
    info = count_segments("€" * 80)
    assert (info.units, info.segments, info.remaining) == (160, 1, 0)


def test_extension_char_is_never_split_across_segments():
    body = "a" * 152 + "€" + "a" * 10  # the ESC pair would occupy septets 153-154
    parts = split_segments(body)
    assert parts == ["a" * 152, "€" + "a" * 10]
    info = count_segments(body)
    assert (info.units, info.segments, info.remaining) == (164, 2, 153 - 12)


def test_greedy_packing_can_need_more_segments_than_units_suggest():
    # 306 septets would fit ceil(306/153) = 2 parts, but the ESC pair cannot straddle.
    body = "a" * 152 + "€" + "a" * 152
    assert count_segments(body).units == 306
    assert count_segments(body).segments == 3
    assert split_segments(body) == ["a" * 152, "€" + "a" * 151, "a"]


def test_extension_char_ending_exactly_on_the_boundary_stays_in_the_part():
    body = "a" * 151 + "€" + "a" * 10  # the ESC pair occupies septets 152-153
    assert split_segments(body) == ["a" * 151 + "€", "a" * 10]


@pytest.mark.parametrize("ch", ["\n", "\r", "é", "Ç", "¤", "@", "ß", "à", "Ø", "Δ"])
def test_basic_table_chars_including_newlines_are_one_septet(ch):
    info = count_segments(ch * 160)
    assert (info.encoding, info.units, info.segments) == ("GSM-7", 160, 1)


# --- UCS-2 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_text_segments_at_70_then_67(length, segments):
    info = count_segments(CYRILLIC * length)
    assert (info.encoding, info.units, info.segments) == ("UCS-2", length, segments)
    assert info.per_segment == (70 if segments == 1 else 67)
    assert len(split_segments(CYRILLIC * length)) == segments


def test_emoji_counts_two_units():
    info = count_segments(EMOJI * 35)
    assert (info.encoding, info.units, info.segments, info.remaining) == ("UCS-2", 70, 1, 0)
    assert count_segments(EMOJI * 36).segments == 2


def test_surrogate_pair_is_never_split_across_segments():
    body = CYRILLIC * 66 + EMOJI + CYRILLIC * 10  # the pair would occupy units 67-68
    parts = split_segments(body)
    assert parts == [CYRILLIC * 66, EMOJI + CYRILLIC * 10]
    assert _units(parts[0], "UCS-2") == 66
    info = count_segments(body)
    assert (info.units, info.segments, info.remaining) == (78, 2, 67 - 12)


@pytest.mark.parametrize("ch", ["`", "ç", "\u00a0", "\u2019", "\u201c", "\t", "\x1b", CYRILLIC])
def test_single_non_gsm_char_forces_ucs2_and_is_reported(ch):
    info = count_segments("Hello " + ch + " there")
    assert info.encoding == "UCS-2"
    assert info.ucs2_chars == (ch,)
    assert info.per_segment == 70


def test_ucs2_chars_are_distinct_in_first_appearance_order():
    info = count_segments("it\u2019s `x` \u2019ç` é€")
    assert info.ucs2_chars == ("\u2019", "`", "ç")


def test_gsm_chars_in_a_ucs2_message_cost_one_unit_each():
    # Once in UCS-2 there is no ESC: '€' is a single UTF-16 unit.
    info = count_segments("€" * 69 + "`")
    assert (info.units, info.segments) == (70, 1)


def test_gsm_message_reports_no_ucs2_chars():
    assert count_segments("Hi {name}, €5 ^_^").ucs2_chars == ()


# --- agreement with the gsm0338 codec ---------------------------------------


def test_tables_agree_with_gsm0338_codec_except_raw_escape():
    # The codec treats "\x1b" as a 1-septet char; we deliberately do not (see module).
    # Every GSM 03.38 char is below U+3000 ('€' U+20AC is the highest), so stop there.
    for cp in range(0x3000):
        ch = chr(cp)
        if ch == "\x1b":
            continue
        try:
            encoded = ch.encode("gsm03.38")
        except UnicodeEncodeError:
            assert ch not in GSM7_BASIC and ch not in GSM7_EXTENSION, repr(ch)
            continue
        expected = 2 if ch in GSM7_EXTENSION else 1
        assert ch in GSM7_BASIC | GSM7_EXTENSION, repr(ch)
        assert len(encoded) == expected, repr(ch)


# --- properties ---------------------------------------------------------------

EDGE_CHARS = "a€^\n" + CYRILLIC + EMOJI + "`"
bodies = st.text(alphabet=st.sampled_from(EDGE_CHARS), max_size=400) | st.text(max_size=400)


@given(bodies)
def test_split_parts_rejoin_match_count_and_fit_limits(body):
    info = count_segments(body)
    parts = split_segments(body)
    assert "".join(parts) == body
    assert len(parts) == info.segments
    assert info.units == sum(_units(p, info.encoding) for p in parts)
    assert all(_units(p, info.encoding) <= info.per_segment for p in parts)
    assert info.remaining == info.per_segment - _units(parts[-1], info.encoding)
    if info.segments > 1:
        assert info.per_segment in (153, 67)
        # Greedy: no part could have taken the first char of the next one.
        for part, nxt in zip(parts, parts[1:], strict=False):
            assert _units(part + nxt[0], info.encoding) > info.per_segment
