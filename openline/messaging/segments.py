"""SMS segment counting: how many carrier parts (cost / rate-limit units) a body becomes.

Rules: GSM 03.38 (3GPP TS 23.038) default alphabet + its extension table, else UCS-2.
Single message: 160 septets / 70 UTF-16 units. Concatenated parts carry a 6-byte UDH,
leaving 153 septets / 67 units each. Parts are packed greedily and never split an
ESC pair (extension char) or a surrogate pair (astral char), so the count can exceed
ceil(units / 153).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Explicit tables rather than the `gsm0338` codec: the codec also maps a raw ESC
# ("\x1b") to a single septet, but ESC is the extension-table prefix, not text (a
# literal one would corrupt the following char on the handset). Its encode() is
# also quadratic (bytes +=) and raises on the first bad char, while we need all of
# them. Apart from ESC the codec agrees with these tables (checked in the tests).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Sent as ESC + char, so each costs 2 septets.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\x0c")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION

# Look-alikes that word processors and phones put in (smart quotes, dashes, ellipsis,
# no-break space) and the GSM-7 characters that read the same: replacing them keeps a
# text at 160 characters a segment instead of 70.
GSM7_LOOKALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u02bc": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...", "\u2022": "-",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u200b": "",
}  # fmt: skip

GSM7 = "GSM-7"
UCS2 = "UCS-2"
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}  # (single message, each concatenated part)


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int  # an empty body still counts as 1 (a carrier still sends one)
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    per_segment: int  # 160/153 for GSM-7, 70/67 for UCS-2 (the limit that applies here)
    remaining: int  # units left in the last segment before another one is needed
    ucs2_chars: tuple[str, ...]  # distinct chars that forced UCS-2, first-seen order


def _is_extension(ch: str) -> bool:
    return ch in GSM7_EXTENSION


def _is_astral(ch: str) -> bool:
    # Outside the BMP -> a surrogate pair in UTF-16.
    return ord(ch) > 0xFFFF


def _analyse(body: str) -> tuple[str, int, tuple[str, ...], Callable[[str], bool]]:
    """Return (encoding, units, ucs2_chars, is_wide) where is_wide(ch) means 2 units."""
    distinct = set(body)
    if distinct <= _GSM7:
        wide = distinct & GSM7_EXTENSION
        units = len(body) + sum(body.count(ch) for ch in wide)
        return GSM7, units, (), _is_extension
    # dict.fromkeys keeps first-appearance order while deduplicating.
    forcing = tuple(dict.fromkeys(ch for ch in body if ch not in _GSM7))
    units = len(body) + sum(1 for ch in body if ord(ch) > 0xFFFF)
    return UCS2, units, forcing, _is_astral


def _part_ends(body: str, units: int, cap: int, is_wide: Callable[[str], bool]) -> list[int]:
    """End index of each part when packing greedily into `cap` units per part."""
    if units == len(body):
        # No 2-unit chars: plain fixed-size chunks, no per-char loop needed.
        return [*range(cap, len(body), cap), len(body)]
    ends: list[int] = []
    used = 0
    for i, ch in enumerate(body):
        width = 2 if is_wide(ch) else 1
        if used + width > cap:  # the pair would straddle a boundary: start a new part
            ends.append(i)
            used = 0
        used += width
    ends.append(len(body))
    return ends


def _plan(body: str) -> tuple[SegmentInfo, list[int]]:
    encoding, units, forcing, is_wide = _analyse(body)
    single, multi = _LIMITS[encoding]
    if units <= single:
        return SegmentInfo(encoding, 1, units, single, single - units, forcing), [len(body)]
    ends = _part_ends(body, units, multi, is_wide)
    last = body[ends[-2] : ends[-1]]
    last_units = len(last) + sum(1 for ch in last if is_wide(ch))
    info = SegmentInfo(encoding, len(ends), units, multi, multi - last_units, forcing)
    return info, ends


def count_segments(body: str) -> SegmentInfo:
    """Encoding, segment count and unit usage of `body` as a carrier would send it."""
    return _plan(body)[0]


def split_segments(body: str) -> list[str]:
    """The parts a carrier would send; `[""]` for an empty body (still one segment)."""
    ends = _plan(body)[1]
    return [body[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
