"""Pre-chat triage: the questions a widget asks before a chat, and checking a visitor's
answers. (The survey after the chat is the inbox's post_survey form: chat.survey.)

Triage answers are checked on the server (the widget's checks are only a convenience): a
required question must be answered, a choice must be one of the offered labels, a scale
answer a whole number from 1 to 7. Each choice (and the yes and the no of a yes/no
question) may carry a severity; the highest severity among the answers becomes the
conversation's priority, which orders the queue, and the most severe answer is the
priority's reason counselors see on the queue row."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from openline.chat.models import ChatQuestion, ChatWidget, QuestionKind, QuestionStage
from openline.messaging.models import Priority

MAX_TEXT_ANSWER = 500
MAX_OPTIONS = 12
MAX_QUESTIONS = 12
SCALE = range(1, 8)
TRUE_WORDS = {"yes", "true", "1", "on", "agreed"}


class AnswerError(ValueError):
    """An answer that cannot be accepted; ``question_id`` says which (for the form)."""

    def __init__(self, question_id: int, message: str) -> None:
        super().__init__(message)
        self.question_id = question_id


# --- what the widget shows ---------------------------------------------------------------


def questions_for(widget: ChatWidget, stage: str) -> list[ChatQuestion]:
    return [q for q in widget.questions.all() if q.stage == stage]


def question_view(question: ChatQuestion) -> dict[str, object]:
    """A question as the visitor's widget gets it: no severities (triage stays private)."""
    view: dict[str, object] = {
        "id": question.pk,
        "kind": question.kind,
        "prompt": question.prompt,
        "required": question.required,
    }
    if question.kind == QuestionKind.CHOICE:
        view["options"] = [o["label"] for o in question.options]
    if question.kind == QuestionKind.CONSENT:
        view["link"] = question.link
    return view


# --- answers -----------------------------------------------------------------------------


def answers_clean(questions: list[ChatQuestion], raw: object) -> list[dict[str, object]]:
    """The visitor's answers, checked, in question order, each with its prompt as asked.
    ``raw`` maps question ids (as strings) to values; ids of questions that no longer exist
    are ignored (a widget loaded before an edit)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise AnswerError(0, "Answers must be an object of question ids and values.")
    cleaned = []
    for question in questions:
        value = raw.get(str(question.pk))
        answer, severity = _answer(question, value)
        if answer is None:
            if question.required:
                raise AnswerError(question.pk, f"Please answer: {question.prompt}")
            continue
        cleaned.append(
            {
                "question": question.pk,
                "prompt": question.prompt,
                "kind": question.kind,
                "answer": answer,
                "severity": severity,
            }
        )
    return cleaned


def _answer(question: ChatQuestion, value: object) -> tuple[str | None, int]:
    """(the answer as stored, its severity); None when left empty."""
    if value is None or value == "" or value is False:
        return None, 0
    kind = question.kind
    if kind == QuestionKind.TEXT:
        if not isinstance(value, str) or "\x00" in value:
            raise AnswerError(question.pk, f"“{question.prompt}” needs a text answer.")
        text = value.strip()
        if len(text) > MAX_TEXT_ANSWER:
            raise AnswerError(question.pk, f"Answers are limited to {MAX_TEXT_ANSWER} characters.")
        return text or None, 0
    if kind == QuestionKind.SCALE:
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if number not in SCALE:
            raise AnswerError(question.pk, f"“{question.prompt}” takes a number from 1 to 7.")
        return str(number), 0
    if kind == QuestionKind.CONSENT:
        if value is True or (isinstance(value, str) and value.lower() in TRUE_WORDS):
            return "agreed", 0
        raise AnswerError(question.pk, f"“{question.prompt}” can only be agreed to.")
    labels = {o["label"]: o.get("severity", 0) for o in _options(question)}
    if kind == QuestionKind.YESNO and isinstance(value, bool):
        value = "Yes" if value else "No"
    if isinstance(value, str) and kind == QuestionKind.YESNO:
        value = value.strip().capitalize()
    if not isinstance(value, str) or value not in labels:
        raise AnswerError(question.pk, f"Choose one of the answers to “{question.prompt}”.")
    return value, int(labels[value])


def _options(question: ChatQuestion) -> list[dict[str, Any]]:
    if question.kind == QuestionKind.YESNO:
        stored = {o["label"]: o.get("severity", 0) for o in question.options}
        return [{"label": label, "severity": stored.get(label, 0)} for label in ("Yes", "No")]
    return list(question.options)


def priority_of(answers: list[dict[str, object]]) -> int:
    severities = [a["severity"] for a in answers]
    return max((s for s in severities if isinstance(s, int)), default=Priority.NORMAL)


def priority_reason_of(answers: list[dict[str, object]]) -> str:
    """Why the answers raise the priority: "Chat triage: <prompt>: <answer>" for the most
    severe answer (the first of equals, in question order); empty when none raises it."""
    raising = [a for a in answers if isinstance(a["severity"], int) and a["severity"] > 0]
    if not raising:
        return ""
    worst = max(raising, key=lambda a: int(str(a["severity"])))
    return f"Chat triage: {worst['prompt']}: {worst['answer']}"


# --- administration ----------------------------------------------------------------------


def options_parse(text: str) -> list[dict[str, object]]:
    """Admin input, one choice per line, optionally with a priority after a bar:
    "Thinking about suicide | urgent" or "Somewhat | 1"."""
    names = {p.label.lower(): p.value for p in Priority}
    options: list[dict[str, object]] = []
    for line in text.splitlines():
        label, _, level = line.partition("|")
        label, level = " ".join(label.split()), level.strip().lower()
        if not label:
            continue
        if level and level not in names and level not in {str(p.value) for p in Priority}:
            raise ValidationError(
                f"“{level}” is not a priority; use normal, elevated, high or urgent"
            )
        severity = names.get(level, int(level) if level.isdigit() else 0)
        if any(o["label"] == label for o in options):
            raise ValidationError(f"“{label[:40]}” is listed twice")
        options.append({"label": label[:120], "severity": severity})
    return options


def question_create(
    *,
    widget: ChatWidget,
    actor_id: int | None,
    stage: str = QuestionStage.PRE,
    kind: str,
    prompt: str,
    required: bool = False,
    options_text: str = "",
    link: str = "",
) -> ChatQuestion:
    from openline.core.services import audit_record

    options = options_parse(options_text)
    if kind == QuestionKind.CHOICE and len(options) < 2:
        raise ValidationError("a choice question needs at least two answers, one per line")
    if len(options) > MAX_OPTIONS:
        raise ValidationError(f"at most {MAX_OPTIONS} answers")
    if kind == QuestionKind.YESNO:  # severities for "Yes" and "No" only
        options = [o for o in options if o["label"] in ("Yes", "No")]
    elif kind != QuestionKind.CHOICE:
        options = []
    if kind == QuestionKind.CONSENT and not link.strip():
        raise ValidationError("a consent question needs a link to the terms")
    question = ChatQuestion(
        organization_id=widget.organization_id,
        widget=widget,
        stage=stage,
        kind=kind,
        prompt=" ".join(prompt.split()),
        required=required,
        options=options,
        link=link.strip() if kind == QuestionKind.CONSENT else "",
    )
    question.full_clean(exclude=["position"])
    with transaction.atomic():
        existing = ChatQuestion.objects.filter(widget=widget, stage=stage)
        if existing.count() >= MAX_QUESTIONS:
            raise ValidationError(f"a widget asks at most {MAX_QUESTIONS} questions at a time")
        question.position = (existing.aggregate(m=Max("position"))["m"] or 0) + 1
        question.save()
        audit_record(
            organization_id=widget.organization_id,
            actor_id=actor_id,
            action="chat_question.create",
            object_type="chat_question",
            object_id=question.pk,
        )
    return question


def question_delete(*, question: ChatQuestion, actor_id: int | None) -> None:
    """Answers already given keep their prompt; only future chats stop asking."""
    from openline.core.services import audit_record

    with transaction.atomic():
        audit_record(
            organization_id=question.organization_id,
            actor_id=actor_id,
            action="chat_question.delete",
            object_type="chat_question",
            object_id=question.pk,
        )
        question.delete()


def question_move(*, question: ChatQuestion, up: bool) -> None:
    """Swap a question with its neighbour in the same stage."""
    with transaction.atomic():
        siblings = list(
            ChatQuestion.objects.select_for_update()
            .filter(widget_id=question.widget_id, stage=question.stage)
            .order_by("position", "id")
        )
        index = next(i for i, q in enumerate(siblings) if q.pk == question.pk)
        other = index - 1 if up else index + 1
        if not 0 <= other < len(siblings):
            return
        siblings[index], siblings[other] = siblings[other], siblings[index]
        for position, sibling in enumerate(siblings, start=1):
            if sibling.position != position:
                ChatQuestion.objects.filter(pk=sibling.pk).update(position=position)
