"""A form's definition and its answers, independent of where it is filled in (the console's
pane, a text survey, the chat widget): sections of fields, each of a kind, optional or
required, with help text and show-if logic (shown only when an earlier field's answer is one
of some values). Checking an answer names the field it belongs to.

The schema is plain JSON, stored in ``FormVersion.schema``::

    {"sections": [{"key": "about", "title": "About the caller", "fields": [
        {"key": "age_group", "label": "Age group", "kind": "choice", "required": true,
         "help": "", "remember": true,
         "options": [{"value": "under_18", "label": "Under 18", "severity": 0}, ...],
         "show_if": {"field": "reason", "values": ["housing"]}}]}]}

``severity`` (0–3) on a choice raises a conversation's priority (surveys) or sets a risk
level (the screener); ``remember`` marks a standard question a returning texter is not
asked again. ``min``/``max`` bound a number."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date
from enum import StrEnum

MAX_SECTIONS = 20
MAX_FIELDS = 100
MAX_OPTIONS = 500  # a taxonomy can be long
MAX_SHORT = 300
MAX_LONG = 5000
MAX_LABEL = 300
KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
SCALE = range(1, 8)
YES, NO = "yes", "no"


class FieldKind(StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    YESNO = "yesno"
    SCALE = "scale"
    CHECKLIST = "checklist"
    TAXONOMY = "taxonomy"


KIND_LABELS = {
    FieldKind.TEXT: "Short text",
    FieldKind.LONG_TEXT: "Long text",
    FieldKind.NUMBER: "Number",
    FieldKind.DATE: "Date",
    FieldKind.CHOICE: "Single choice",
    FieldKind.MULTI_CHOICE: "Multiple choice",
    FieldKind.YESNO: "Yes or no",
    FieldKind.SCALE: "Scale from 1 to 7",
    FieldKind.CHECKLIST: "Checklist",
    FieldKind.TAXONOMY: "Taxonomy pick-list",
}
# Kinds answered by picking from options (their answers are option values).
PICKED = {FieldKind.CHOICE, FieldKind.MULTI_CHOICE, FieldKind.CHECKLIST, FieldKind.TAXONOMY}
MANY = {FieldKind.MULTI_CHOICE, FieldKind.CHECKLIST}


class SchemaError(ValueError):
    """A form definition that cannot be saved; the message says what to change."""


class AnswerError(ValueError):
    """An answer that cannot be accepted; ``key`` names the field, the message names it too."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class AnswersError(ValueError):
    """Several answers refused at once: ``errors`` maps field keys to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str
    severity: int = 0


@dataclass(frozen=True, slots=True)
class ShowIf:
    field: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Field:
    key: str
    label: str
    kind: FieldKind
    required: bool = False
    help: str = ""
    options: tuple[Option, ...] = ()
    show_if: ShowIf | None = None
    remember: bool = False
    min: float | None = None
    max: float | None = None
    taxonomy: int | None = None  # the Taxonomy its options were copied from

    def option(self, value: str) -> Option | None:
        return next((o for o in self.all_options() if o.value == value), None)

    def all_options(self) -> tuple[Option, ...]:
        if self.kind == FieldKind.YESNO:
            given = {o.value: o.severity for o in self.options}
            return (Option(YES, "Yes", given.get(YES, 0)), Option(NO, "No", given.get(NO, 0)))
        if self.kind == FieldKind.SCALE:
            return tuple(Option(str(n), str(n)) for n in SCALE)
        return self.options


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Schema:
    sections: tuple[Section, ...]

    def fields(self) -> Iterator[Field]:
        for section in self.sections:
            yield from section.fields

    def field(self, key: str) -> Field | None:
        return next((f for f in self.fields() if f.key == key), None)


@dataclass(frozen=True, slots=True)
class Answer:
    """One cleaned answer: ``value`` as stored, with typed copies where they apply."""

    value: str
    label: str = ""
    number: float | None = None
    date: date | None = None
    severity: int = 0


# key -> the field's answers (one, or one per ticked item)
Answers = dict[str, list[Answer]]


# --- loading and checking a definition -----------------------------------------------------


def schema_load(data: object) -> Schema:
    """A stored or submitted definition, checked; raises SchemaError saying what is wrong."""
    if not isinstance(data, Mapping) or not isinstance(data.get("sections"), list):
        raise SchemaError("A form needs a list of sections.")
    raw_sections = data["sections"]
    if len(raw_sections) > MAX_SECTIONS:
        raise SchemaError(f"A form has at most {MAX_SECTIONS} sections.")
    seen: dict[str, Field] = {}
    sections = []
    for number, raw in enumerate(raw_sections, start=1):
        if not isinstance(raw, Mapping):
            raise SchemaError(f"Section {number} is not a section.")
        fields_ = tuple(_field_load(f, seen) for f in _list(raw.get("fields"), "fields"))
        key = str(raw.get("key") or f"section_{number}")
        sections.append(Section(key, _text(raw.get("title"), MAX_LABEL), fields_))
    if len(seen) > MAX_FIELDS:
        raise SchemaError(f"A form has at most {MAX_FIELDS} questions.")
    return Schema(tuple(sections))


def _list(value: object, what: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SchemaError(f"“{what}” must be a list.")
    return value


def _text(value: object, limit: int) -> str:
    return " ".join(str(value or "").split())[:limit]


def _field_load(raw: object, seen: dict[str, Field]) -> Field:
    if not isinstance(raw, Mapping):
        raise SchemaError("Each question must be an object.")
    label = _text(raw.get("label"), MAX_LABEL)
    if not label:
        raise SchemaError("Every question needs a label.")
    key = str(raw.get("key") or "")
    if not KEY.match(key):
        raise SchemaError(f"“{label}” needs a key of lower-case letters, digits and _.")
    if key in seen:
        raise SchemaError(f"Two questions have the key “{key}”.")
    try:
        kind = FieldKind(str(raw.get("kind")))
    except ValueError:
        raise SchemaError(f"“{label}” has an unknown kind “{raw.get('kind')}”.") from None
    options = tuple(_option_load(o, label) for o in _list(raw.get("options"), "options"))
    if kind in PICKED and len(options) < (1 if kind == FieldKind.CHECKLIST else 2):
        raise SchemaError(f"“{label}” needs at least two options.")
    if len(options) > MAX_OPTIONS:
        raise SchemaError(f"“{label}” has more than {MAX_OPTIONS} options.")
    if len({o.value for o in options}) != len(options):
        raise SchemaError(f"“{label}” lists an option twice.")
    if kind not in PICKED and kind != FieldKind.YESNO:
        options = ()
    found = Field(
        key=key,
        label=label,
        kind=kind,
        required=bool(raw.get("required")),
        help=_text(raw.get("help"), 500),
        options=options,
        show_if=_show_if_load(raw.get("show_if"), label, seen),
        remember=bool(raw.get("remember")),
        min=_bound(raw.get("min"), label) if kind == FieldKind.NUMBER else None,
        max=_bound(raw.get("max"), label) if kind == FieldKind.NUMBER else None,
        taxonomy=raw["taxonomy"] if isinstance(raw.get("taxonomy"), int) else None,
    )
    if found.min is not None and found.max is not None and found.min > found.max:
        raise SchemaError(f"“{label}”: the smallest number is above the largest.")
    seen[key] = found
    return found


def _option_load(raw: object, label: str) -> Option:
    if isinstance(raw, str):
        raw = {"label": raw}
    if not isinstance(raw, Mapping):
        raise SchemaError(f"An option of “{label}” is not an option.")
    text = _text(raw.get("label"), MAX_LABEL)
    if not text:
        raise SchemaError(f"An option of “{label}” has no label.")
    value = _text(raw.get("value"), 120) or option_value(text)
    severity = raw.get("severity", 0)
    if not isinstance(severity, int) or isinstance(severity, bool) or not 0 <= severity <= 3:
        raise SchemaError(f"“{text}” in “{label}”: a severity is 0, 1, 2 or 3.")
    return Option(value, text, severity)


def option_value(label: str) -> str:
    """A stable value for an option from its label ("Under 18" -> "under_18")."""
    return re.sub(r"[^a-z0-9]+", "_", label.casefold()).strip("_")[:120] or "option"


def _show_if_load(raw: object, label: str, seen: dict[str, Field]) -> ShowIf | None:
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        raise SchemaError(f"“{label}”: show-if must name a question and its answers.")
    earlier = seen.get(str(raw.get("field") or ""))
    if earlier is None:
        raise SchemaError(f"“{label}” can only depend on a question before it.")
    values = tuple(str(v) for v in _list(raw.get("values"), "values"))
    if not values:
        raise SchemaError(f"“{label}”: choose the answers that show it.")
    known = {o.value for o in earlier.all_options()}
    if known and not set(values) <= known:
        raise SchemaError(f"“{label}” depends on an answer “{earlier.label}” does not offer.")
    return ShowIf(earlier.key, values)


def _bound(value: object, label: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(str(value))
    except ValueError:
        raise SchemaError(f"“{label}”: limits must be numbers.") from None


def schema_dump(schema: Schema) -> dict[str, object]:
    """The JSON to store; ``schema_load(schema_dump(s)) == s``."""

    def field_dump(f: Field) -> dict[str, object]:
        data: dict[str, object] = {
            "key": f.key,
            "label": f.label,
            "kind": str(f.kind),
            "required": f.required,
            "help": f.help,
            "remember": f.remember,
            "options": [
                {"value": o.value, "label": o.label, "severity": o.severity} for o in f.options
            ],
        }
        if f.show_if:
            data["show_if"] = {"field": f.show_if.field, "values": list(f.show_if.values)}
        if f.min is not None:
            data["min"] = f.min
        if f.max is not None:
            data["max"] = f.max
        if f.taxonomy is not None:
            data["taxonomy"] = f.taxonomy
        return data

    return {
        "sections": [
            {"key": s.key, "title": s.title, "fields": [field_dump(f) for f in s.fields]}
            for s in schema.sections
        ]
    }


# --- answers -----------------------------------------------------------------------------


def is_shown(schema: Schema, field_: Field, answers: Mapping[str, list[Answer]]) -> bool:
    """Whether ``field_`` is shown given the answers so far (its condition's field shown
    and answered with one of the values)."""
    condition = field_.show_if
    if condition is None:
        return True
    earlier = schema.field(condition.field)
    if earlier is None or not is_shown(schema, earlier, answers):
        return False
    return any(a.value in condition.values for a in answers.get(condition.field, []))


def answer_clean(field_: Field, raw: object) -> list[Answer]:
    """One field's answer from a form post or JSON: a string, or a list of strings for a
    field of several answers. Empty means no answer; a bad one raises AnswerError."""
    values = [v for v in (raw if isinstance(raw, list | tuple) else [raw]) if v not in (None, "")]
    if not values:
        return []
    if field_.kind not in MANY and len(values) > 1:
        raise AnswerError(field_.key, f"“{field_.label}” takes one answer.")
    return [_one(field_, v) for v in values]


def _one(field_: Field, raw: object) -> Answer:
    if isinstance(raw, bool):
        raw = YES if raw else NO
    if not isinstance(raw, str | int | float) or "\x00" in str(raw):
        raise AnswerError(field_.key, f"“{field_.label}” cannot take that answer.")
    text = str(raw).strip()
    kind = field_.kind
    if kind in (FieldKind.TEXT, FieldKind.LONG_TEXT):
        limit = MAX_SHORT if kind == FieldKind.TEXT else MAX_LONG
        if len(text) > limit:
            raise AnswerError(field_.key, f"“{field_.label}” takes at most {limit} characters.")
        return Answer(text)
    if kind == FieldKind.NUMBER:
        return _number(field_, text)
    if kind == FieldKind.DATE:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise AnswerError(field_.key, f"“{field_.label}” takes a date (YYYY-MM-DD).") from None
        return Answer(day.isoformat(), date=day)
    if kind == FieldKind.YESNO:
        text = text.casefold()
    option = field_.option(text)
    if option is None:
        raise AnswerError(field_.key, f"Choose one of the answers to “{field_.label}”.")
    number = float(option.value) if kind == FieldKind.SCALE else None
    return Answer(option.value, option.label, number=number, severity=option.severity)


def _number(field_: Field, text: str) -> Answer:
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        raise AnswerError(field_.key, f"“{field_.label}” takes a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise AnswerError(field_.key, f"“{field_.label}” takes a number.")
    if field_.min is not None and number < field_.min:
        raise AnswerError(field_.key, f"“{field_.label}” is at least {field_.min:g}.")
    if field_.max is not None and number > field_.max:
        raise AnswerError(field_.key, f"“{field_.label}” is at most {field_.max:g}.")
    return Answer(f"{number:g}", number=number)


def answers_clean(schema: Schema, raw: Mapping[str, object], *, partial: bool = False) -> Answers:
    """Every shown field's answer from ``raw`` (field key -> value or list of values),
    in form order; answers to hidden fields are dropped. Unless ``partial`` (a draft saved
    as it is filled in), a required shown field left empty is refused. Raises
    AnswersError with every problem, each naming its field."""
    answers: Answers = {}
    errors: dict[str, str] = {}
    for field_ in schema.fields():
        if not is_shown(schema, field_, answers):
            continue
        try:
            cleaned = answer_clean(field_, raw.get(field_.key))
        except AnswerError as exc:
            errors[field_.key] = str(exc)
            continue
        if cleaned:
            answers[field_.key] = cleaned
        elif field_.required and not partial:
            errors[field_.key] = f"“{field_.label}” is required."
    if errors:
        raise AnswersError(errors)
    return answers


def missing(schema: Schema, answers: Mapping[str, list[Answer]]) -> list[Field]:
    """Required fields that are shown and not answered (what blocks closing)."""
    return [
        f
        for f in schema.fields()
        if f.required and is_shown(schema, f, answers) and not answers.get(f.key)
    ]


def severity(answers: Mapping[str, list[Answer]]) -> int:
    """The most severe answer (0 when none carries a severity)."""
    return max((a.severity for items in answers.values() for a in items), default=0)


def next_question(
    schema: Schema, answers: Mapping[str, list[Answer]], *, done: set[str]
) -> Field | None:
    """The next shown field after those answered or passed over (``done``): a text survey
    asks one at a time, in form order."""
    for field_ in schema.fields():
        if field_.key in done or field_.key in answers:
            continue
        if is_shown(schema, field_, answers):
            return field_
    return None


def answers_from_rows(schema: Schema, rows: list[tuple[str, str, str]]) -> Answers:
    """Stored answers (field key, value, label) back as Answers, with each option's
    severity from ``schema`` (the version they were given under)."""
    answers: Answers = {}
    for key, value, label in rows:
        field_ = schema.field(key)
        option = field_.option(value) if field_ is not None else None
        answers.setdefault(key, []).append(
            Answer(value, label, severity=option.severity if option else 0)
        )
    return answers


@dataclass(slots=True)
class Shown:
    """A field with its answers, for showing a response (pane, export, printout)."""

    field: Field
    answers: list[Answer] = dataclass_field(default_factory=list)

    @property
    def text(self) -> str:
        return ", ".join(a.label or a.value for a in self.answers)
