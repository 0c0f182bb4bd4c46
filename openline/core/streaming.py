"""CSV exports streamed under ASGI, a piece at a time."""

from __future__ import annotations

import csv
import itertools
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async

LINES_PER_PIECE = 500


class _Lines:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)


def _next_lines(rows: Iterator[list[str]]) -> str:
    lines = _Lines()
    csv.writer(lines).writerows(itertools.islice(rows, LINES_PER_PIECE))
    return "".join(lines.parts)


async def csv_stream(rows: Iterator[list[str]]) -> AsyncIterator[str]:
    """Really streamed under ASGI (Django reads a synchronous iterator whole before sending
    it there): the rows are read a piece at a time on the request's thread, which holds its
    database connection. Starts with a byte-order mark: Excel reads UTF-8 only with one."""
    yield "\ufeff"
    while piece := await sync_to_async(_next_lines)(rows):
        yield piece
