"""The risk screener template, modelled on the Columbia Suicide Severity Rating Scale
screener (C-SSRS, screen version, past month): six questions with its skip logic, the
counselor asking and recording the person's answers.

Skip logic: questions 3, 4 and 5 are asked only when question 2 is answered yes; question 6
is always asked, and its follow-up (within the past three months?) only after a yes.

The risk level is the most severe positive item (the screener's triage): a yes to 1 or 2 is
low risk; a yes to 3, or behaviour longer ago than three months, moderate; a yes to 4 or 5,
or behaviour within three months, high. Each "yes" carries that level as its severity, so
forms.schema.severity gives the level (0 when every answer is no)."""

from __future__ import annotations

from openline.forms.schema import Schema, schema_load
from openline.messaging.models import RiskLevel

NAME = "Risk screener (Columbia, screen version)"

_LOW, _MODERATE, _HIGH = RiskLevel.LOW.value, RiskLevel.MODERATE.value, RiskLevel.HIGH.value


def _yesno(
    key: str, label: str, level: int, help_: str = "", show_if: str = ""
) -> dict[str, object]:
    question: dict[str, object] = {
        "key": key,
        "label": label,
        "kind": "yesno",
        "required": True,
        "help": help_,
        "options": [
            {"value": "yes", "label": "Yes", "severity": level},
            {"value": "no", "label": "No", "severity": 0},
        ],
    }
    if show_if:
        question["show_if"] = {"field": show_if, "values": ["yes"]}
    return question


SCHEMA: dict[str, object] = {
    "sections": [
        {
            "key": "past_month",
            "title": "In the past month",
            "fields": [
                _yesno(
                    "wish_dead",
                    "1. Have you wished you were dead or wished you could go to sleep and not "
                    "wake up?",
                    _LOW,
                ),
                _yesno(
                    "thoughts",
                    "2. Have you actually had any thoughts of killing yourself?",
                    _LOW,
                    "If no, go to question 6.",
                ),
                _yesno(
                    "method",
                    "3. Have you been thinking about how you might do this?",
                    _MODERATE,
                    "For example, thought about taking an overdose but never made a plan.",
                    show_if="thoughts",
                ),
                _yesno(
                    "intent",
                    "4. Have you had these thoughts and had some intention of acting on them?",
                    _HIGH,
                    "As opposed to: I have the thoughts but I definitely will not do anything.",
                    show_if="thoughts",
                ),
                _yesno(
                    "plan",
                    "5. Have you started to work out or worked out the details of how to kill "
                    "yourself? Do you intend to carry out this plan?",
                    _HIGH,
                    show_if="thoughts",
                ),
            ],
        },
        {
            "key": "behaviour",
            "title": "Ever",
            "fields": [
                _yesno(
                    "behaviour",
                    "6. Have you ever done anything, started to do anything, or prepared to do "
                    "anything to end your life?",
                    _MODERATE,
                    "For example: collected pills, obtained a gun, gave away valuables, wrote a "
                    "will or suicide note, held a gun but changed your mind, cut yourself, "
                    "tried to hang yourself.",
                ),
                _yesno(
                    "behaviour_recent",
                    "6b. Was this within the past three months?",
                    _HIGH,
                    show_if="behaviour",
                ),
            ],
        },
    ]
}


def screener_schema() -> Schema:
    return schema_load(SCHEMA)
