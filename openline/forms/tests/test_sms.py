"""Questions as texts and answers read from a text (forms.sms)."""

from __future__ import annotations

from datetime import date

import pytest

from openline.forms.schema import AnswerError, Field, schema_load
from openline.forms.sms import answer_read, is_word, question_text, refusal_text
from openline.forms.tests.surveying import AGE, FEELING, REASON, SAFE

NUMBER = {"key": "age", "label": "Age", "kind": "number", "min": 10, "max": 120}
WHEN = {"key": "when", "label": "When did it start", "kind": "date", "help": "roughly"}
NOTE = {"key": "note", "label": "Anything else", "kind": "text"}
MANY = {
    "key": "topics",
    "label": "Topics",
    "kind": "checklist",
    "options": ["A", "B", "C", "D", "E"],
}
LONG = {
    "key": "county",
    "label": "County",
    "kind": "taxonomy",
    "options": [f"County number {n} of the state" for n in range(60)],
}


def field(raw: dict[str, object]) -> Field:
    found = schema_load({"sections": [{"fields": [raw]}]}).field(str(raw["key"]))
    assert found is not None
    return found


def values(raw: dict[str, object], text: str) -> list[str]:
    return [a.value for a in answer_read(field(raw), text)]


def test_questions_number_their_options_and_say_how_to_answer() -> None:
    assert question_text(field(AGE)) == (
        "Age group\n1 Under 18\n2 18 to 24\n3 25 or older\nReply 1, 2 or 3."
    )
    assert question_text(field(MANY)).endswith(
        "5 E\nReply with the numbers of all that apply, separated by commas (e.g. 1,3)."
    )
    assert question_text(field(NUMBER)) == "Age\nReply with a number from 10 to 120."
    assert question_text(field(WHEN)) == (
        "When did it start\n(roughly)\nReply with a date as month/day/year, e.g. 3/31/2026."
    )
    assert question_text(field(NOTE)) == "Anything else"
    long = question_text(field(LONG))
    assert "1 County" not in long and long.endswith("Reply with the name of your answer.")
    assert refusal_text(field(SAFE)) == (
        "Sorry, that doesn't answer “Are you safe right now”.\n"
        "Are you safe right now\nReply YES or NO."
    )


@pytest.mark.parametrize(
    ("raw", "text", "expected"),
    [
        (AGE, "2", ["18_24"]),
        (AGE, " 3. ", ["25_up"]),
        (AGE, "under 18", ["under_18"]),
        (AGE, "18_24", ["18_24"]),
        (SAFE, "Y", ["yes"]),
        (SAFE, "nope", ["no"]),
        (SAFE, "No.", ["no"]),
        (FEELING, "5", ["5"]),
        (FEELING, "6/7", ["6"]),
        (REASON, "1,3", ["housing", "someone_to_talk_to"]),
        (REASON, "3 and 1", ["someone_to_talk_to", "housing"]),
        (REASON, "Food, Housing", ["food", "housing"]),
        (REASON, "2, 2", ["food"]),
        (NUMBER, "42", ["42"]),
        (NUMBER, "42.", ["42"]),
        (WHEN, "3/31/2026", ["2026-03-31"]),
        (WHEN, "2026-03-31", ["2026-03-31"]),
        (WHEN, "March 31st, 2026", ["2026-03-31"]),
        (WHEN, "31 Mar 2026", ["2026-03-31"]),
        (NOTE, "  it's hard  ", ["it's hard"]),
        (LONG, "county number 7 of the state", ["county_number_7_of_the_state"]),
    ],
)
def test_answers_are_read_from_a_text(
    raw: dict[str, object], text: str, expected: list[str]
) -> None:
    assert values(raw, text) == expected


@pytest.mark.parametrize(
    ("raw", "text", "named"),
    [
        (AGE, "4", "Age group"),
        (AGE, "1,2", "Age group"),
        (AGE, "old", "Age group"),
        (SAFE, "maybe", "Are you safe right now"),
        (FEELING, "8", "How are you feeling"),
        (FEELING, "0", "How are you feeling"),
        (REASON, "1, 9", "What is it about"),
        (NUMBER, "about forty", "Age"),
        (NUMBER, "200", "Age"),
        (WHEN, "last week", "When did it start"),
        (WHEN, "13/31/2026", "When did it start"),
        (NOTE, "   ", "Anything else"),
    ],
)
def test_a_text_that_does_not_fit_is_refused_naming_the_question(
    raw: dict[str, object], text: str, named: str
) -> None:
    with pytest.raises(AnswerError) as refused:
        answer_read(field(raw), text)
    assert f"“{named}”" in str(refused.value) and refused.value.key == raw["key"]


def test_the_skip_word_counts_only_as_the_whole_text() -> None:
    assert is_word(" Skip! ", "SKIP")
    assert not is_word("skip this one", "SKIP")
    assert not is_word("", "SKIP")
    assert date(2026, 3, 31).isoformat() == values(WHEN, "03-31-2026")[0]
