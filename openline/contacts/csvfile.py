"""CSV files of contacts as spreadsheets write them: UTF-8 with or without a byte-order mark,
comma, semicolon or tab between cells, a header row first. An upload is checked and
compressed in one pass and read back row by row, never whole, so a 50 MB file costs a few MB
of memory. Spreadsheet formulas are only ever text here (``csv_safe`` on the way out)."""

from __future__ import annotations

import codecs
import csv
import io
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_BYTES = 50 * 1024 * 1024
MAX_COLUMNS = 200
DELIMITERS = (",", ";", "\t")
SAVE_AS = (
    "In your spreadsheet choose File › Save As (or Download) › “CSV UTF-8 (Comma delimited)” "
    "and upload that file."
)
# What makes a spreadsheet read a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_READ_SIZE = 64 * 1024


class CsvFileError(ValueError):
    """The file cannot be used; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class StoredCsv:
    content: bytes  # the file, zlib-compressed
    size: int  # bytes as uploaded
    delimiter: str
    headers: list[str]
    rows: int  # data rows that are not blank


def csv_safe(text: str) -> str:
    """A cell a spreadsheet shows as the text it is, never runs as a formula: an apostrophe
    before it (and before text that already starts with apostrophes and then a formula, so
    that ``csv_unsafe`` gives back exactly what was written)."""
    return "'" + text if _formula_like(text) else text


def csv_unsafe(text: str) -> str:
    """Undo ``csv_safe``: an export read back in gives the same text."""
    return text[1:] if text[:1] == "'" and _formula_like(text) else text


def _formula_like(text: str) -> bool:
    start = text.lstrip("'")[:1]
    return bool(start) and start in FORMULA_START


def csv_store(chunks: Iterable[bytes]) -> StoredCsv:
    """Check and compress an uploaded file; raise CsvFileError saying what is wrong."""
    content, size = _compress(chunks)
    delimiter = _sniff(content)
    records = csv_records(content, delimiter)
    try:
        _, header, _ = next(records)
    except StopIteration:
        raise CsvFileError("The file is empty.") from None
    headers = _headers(header)
    rows = sum(1 for _, cells, _ in records if not blank(cells))
    if not rows:
        raise CsvFileError("The file has a header row but no contacts under it.")
    return StoredCsv(content=content, size=size, delimiter=delimiter, headers=headers, rows=rows)


def _compress(chunks: Iterable[bytes]) -> tuple[bytes, int]:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    compressor = zlib.compressobj(6)
    parts: list[bytes] = []
    size, line = 0, 1
    for chunk in chunks:
        if not size:
            _check_kind(chunk)
        size += len(chunk)
        csv_check_size(size)
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line += chunk.count(b"\n", 0, max(exc.start, 0))
            raise _not_utf8(line) from None
        line += chunk.count(b"\n")
        parts.append(compressor.compress(chunk))
    if not size:
        raise CsvFileError("The file is empty.")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _not_utf8(line) from None
    parts.append(compressor.flush())
    return b"".join(parts), size


def csv_check_size(size: int) -> None:
    if size > MAX_BYTES:
        raise CsvFileError(
            f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB. Split it into smaller "
            "files and import them one after the other."
        )


def _not_utf8(line: int) -> CsvFileError:
    return CsvFileError(
        f"The file is not in the UTF-8 encoding (the first character that is not is on line "
        f"{line}). {SAVE_AS}"
    )


def _check_kind(start: bytes) -> None:
    if start.startswith(b"PK\x03\x04"):
        raise CsvFileError(f"This is an Excel workbook or a zip file, not a CSV file. {SAVE_AS}")
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CsvFileError(f"The file is saved as UTF-16 (“Unicode text”), not UTF-8. {SAVE_AS}")
    if b"\x00" in start[:4096]:
        raise CsvFileError(f"This is not a text file. {SAVE_AS}")


class _Inflate(io.RawIOBase):
    """The compressed content as a stream, inflated a piece at a time."""

    def __init__(self, content: bytes) -> None:
        self._data = memoryview(content)
        self._at = 0
        self._inflater = zlib.decompressobj()
        self._ready = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._ready:
            tail = self._inflater.unconsumed_tail
            if not tail and self._at >= len(self._data):
                self._ready = self._inflater.flush()
                if not self._ready:
                    return 0
                break
            if not tail:
                tail = bytes(self._data[self._at : self._at + _READ_SIZE])
                self._at += _READ_SIZE
            self._ready = self._inflater.decompress(tail, _READ_SIZE)
        size = min(len(buffer), len(self._ready))
        buffer[:size] = self._ready[:size]
        self._ready = self._ready[size:]
        return size


def _text(content: bytes) -> io.TextIOWrapper:
    # utf-8-sig drops a byte-order mark; newline="" leaves line ends inside cells to csv.
    raw = io.BufferedReader(_Inflate(content), _READ_SIZE)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _sniff(content: bytes) -> str:
    """The delimiter the header row uses most (outside quotes): comma, semicolon or tab."""
    with _text(content) as text:
        line = text.readline(64 * 1024)
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass(frozen=True, slots=True)
class Place:
    """Where reading stopped: the characters read (after any byte-order mark) and the row
    number of the last record read. Reading on from a place decodes what comes before it
    again but parses none of it as CSV, so a task's later turns start at once."""

    offset: int = 0
    row: int = 0


def csv_records(
    content: bytes, delimiter: str, *, after: Place | None = None
) -> Iterator[tuple[int, list[str], Place]]:
    """(row number, cells, the place after it) for every record from ``after`` (from the
    top, the header being row 1). Row numbers are the ones a spreadsheet shows: a cell with
    line breaks does not add rows."""
    start = after or Place()
    with _text(content) as text:
        offset = start.offset
        _skip(text, offset)

        def lines() -> Iterator[str]:
            nonlocal offset
            for line in text:
                offset += len(line)
                yield line

        reader = csv.reader(lines(), delimiter=delimiter)
        number = start.row
        while True:
            number += 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise CsvFileError(f"Row {number} cannot be read as CSV ({exc}).") from None
            yield number, cells, Place(offset, number)


def _skip(text: io.TextIOWrapper, characters: int) -> None:
    while characters > 0:
        read = len(text.read(min(characters, _READ_SIZE)))
        if not read:
            return
        characters -= read


def blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def _headers(cells: list[str]) -> list[str]:
    headers = [" ".join(cell.split()) for cell in cells]
    while headers and not headers[-1]:
        headers.pop()
    if not headers:
        raise CsvFileError("The first row must name the columns (Name, Phone, …); it is empty.")
    if len(headers) > MAX_COLUMNS:
        raise CsvFileError(
            f"The file has {len(headers)} columns; at most {MAX_COLUMNS} can be imported. "
            "Remove the columns you do not need."
        )
    return [header or f"Column {i}" for i, header in enumerate(headers, 1)]


def csv_data_rows(
    content: bytes, delimiter: str, *, after: Place | None = None
) -> Iterator[tuple[int, list[str], Place]]:
    """(row number, cells, the place after it) of the data rows that are not blank, from the
    top (the header skipped) or from ``after``, a place this gave before."""
    records = csv_records(content, delimiter, after=after)
    if after is None:
        next(records, None)  # the header
    for number, cells, place in records:
        if not blank(cells):
            yield number, cells, place
