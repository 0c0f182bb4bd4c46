"""Form questions as texts, and answers read from a text (the surveys over SMS).

One question per text: its label, its help, the options numbered ("1 Under 18") and how to
answer ("Reply 1, 2 or 3."). Reading an answer is forgiving where it can be without
guessing: an option's number, label or value; yes/y/no/n; a scale number; a date in a few
common formats (month/day/year first: the question says so). An answer that does not fit
raises forms.schema.AnswerError naming the question, like the console's form does."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from openline.forms.schema import (
    MANY,
    NO,
    PICKED,
    YES,
    Answer,
    AnswerError,
    Field,
    FieldKind,
    answer_clean,
)

# A question text stays well under a text's 1,600 characters; a long pick-list (a
# taxonomy) is then answered by name instead of by number.
MAX_QUESTION_CHARS = 1200
DATE_HINT = "month/day/year, e.g. 3/31/2026"
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%m/%d/%y",
    "%m-%d-%Y",
    "%m.%d.%Y",
    "%B %d %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%d %b %Y",
)
_YES = {"yes", "y", "yeah", "yep", "yup", "ya", "yea", "yes please"}
_NO = {"no", "n", "nope", "nah", "no thanks"}
_EDGES = " \t\r\n.!?,;:'\"“”‘’()[]"
_SEPARATORS = re.compile(r"\s*(?:,|;|&|\+|/|\band\b|\s)\s*")


def _plain(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).strip(_EDGES)


def is_word(text: str, word: str) -> bool:
    """Whether a text is ``word`` and nothing else (case, spaces and end punctuation
    aside): the skip word counts only as the whole text."""
    return bool(word.strip()) and _plain(text) == _plain(word)


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _numbered(field_: Field) -> bool:
    lines = sum(len(o.label) + 5 for o in field_.all_options())
    return lines + len(field_.label) + len(field_.help) < MAX_QUESTION_CHARS


def answer_hint(field_: Field) -> str:
    """How to answer ``field_`` by text, one sentence."""
    kind = field_.kind
    if kind in PICKED:
        count = len(field_.options)
        if not _numbered(field_):
            return "Reply with the name of your answer."
        if kind in MANY:
            return "Reply with the numbers of all that apply, separated by commas (e.g. 1,3)."
        if count <= 3:
            return f"Reply {_or_list([str(n) for n in range(1, count + 1)])}."
        return f"Reply a number from 1 to {count}."
    if kind == FieldKind.YESNO:
        return "Reply YES or NO."
    if kind == FieldKind.SCALE:
        return "Reply a number from 1 to 7."
    if kind == FieldKind.NUMBER:
        if field_.min is not None and field_.max is not None:
            return f"Reply with a number from {field_.min:g} to {field_.max:g}."
        if field_.min is not None:
            return f"Reply with a number of at least {field_.min:g}."
        if field_.max is not None:
            return f"Reply with a number up to {field_.max:g}."
        return "Reply with a number."
    if kind == FieldKind.DATE:
        return f"Reply with a date as {DATE_HINT}."
    return ""


def question_text(field_: Field) -> str:
    """The text asking ``field_``: label, help, numbered options and how to answer."""
    parts = [field_.label]
    if field_.help:
        parts.append(f"({field_.help})")
    if field_.kind in PICKED and _numbered(field_):
        parts.append(
            "\n".join(f"{n} {o.label}" for n, o in enumerate(field_.all_options(), start=1))
        )
    hint = answer_hint(field_)
    if hint:
        parts.append(hint)
    return "\n".join(parts)


def refusal_text(field_: Field) -> str:
    """The reply to an answer that does not fit: the question named, then asked again."""
    return f"Sorry, that doesn't answer “{field_.label}”.\n" + question_text(field_)


def answer_read(field_: Field, text: str) -> list[Answer]:
    """``field_``'s answer from a text; raises AnswerError naming the question."""
    body = text.strip()
    if not body:
        raise AnswerError(field_.key, f"“{field_.label}” needs an answer.")
    kind = field_.kind
    if kind in (FieldKind.TEXT, FieldKind.LONG_TEXT):
        return answer_clean(field_, body)
    if kind == FieldKind.NUMBER:
        return answer_clean(field_, body.strip(_EDGES.replace(".", "")).strip())
    if kind == FieldKind.DATE:
        return answer_clean(field_, _date(field_, body).isoformat())
    if kind == FieldKind.YESNO:
        word = _plain(body)
        if word in _YES:
            return answer_clean(field_, YES)
        if word in _NO:
            return answer_clean(field_, NO)
        raise AnswerError(field_.key, f"“{field_.label}” takes YES or NO.")
    if kind == FieldKind.SCALE:
        match = re.fullmatch(r"([1-7])(?:\s*(?:/|out of|of)\s*7)?", _plain(body))
        if match is None:
            raise AnswerError(field_.key, f"“{field_.label}” takes a number from 1 to 7.")
        return answer_clean(field_, match.group(1))
    return _picked(field_, body)


def _picked(field_: Field, body: str) -> list[Answer]:
    options = field_.all_options()
    by_name = {_plain(o.label): o.value for o in options} | {o.value: o.value for o in options}
    whole = by_name.get(_plain(body))
    if whole is not None:
        return answer_clean(field_, [whole])
    many = field_.kind in MANY
    parts = [p for p in _SEPARATORS.split(_plain(body)) if p] if many else [_plain(body)]
    if not many and len(parts) == 1 and "," in body:
        parts = [_plain(p) for p in body.split(",") if _plain(p)]
    if many and not all(p.isdigit() for p in parts):  # "Housing, Food" by name
        parts = [_plain(p) for p in re.split(r"[,;]", body) if _plain(p)]
    values: list[str] = []
    for part in parts:
        if part.isdigit() and 1 <= int(part) <= len(options):
            value = options[int(part) - 1].value
        else:
            found = by_name.get(part)
            if found is None:
                raise AnswerError(field_.key, _picked_message(field_))
            value = found
        if value not in values:
            values.append(value)
    if not values or (not many and len(values) > 1):
        raise AnswerError(field_.key, _picked_message(field_))
    return answer_clean(field_, values)


def _picked_message(field_: Field) -> str:
    if field_.kind in MANY:
        return f"“{field_.label}” takes the numbers of the answers that apply."
    return f"Choose one of the answers to “{field_.label}”."


def _date(field_: Field, body: str) -> date:
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", body.replace(",", " "), flags=re.I)
    cleaned = " ".join(cleaned.split()).strip(_EDGES)
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).date()  # noqa: DTZ007 -- a date, no time
        except ValueError:
            continue
    raise AnswerError(field_.key, f"“{field_.label}” takes a date as {DATE_HINT}.")
