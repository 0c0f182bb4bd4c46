"""Forms filled in by staff in a conversation's pane: the inbox's contact form and the risk
assessment (read with the pre- and post-conversation surveys, shown read-only), saved as
they are filled in and completed with the full check. The risk assessment's result is the
most severe positive answer (forms.schema.severity), kept on the response and on the
conversation; "no risk identified" (0) leaves the conversation's level empty.

Who fills them in: the member holding the conversation, and supervisors and admins (who
may read every conversation); everyone else who may read the conversation sees the
answers read-only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery

from openline.core.models import Membership
from openline.core.services import audit_record
from openline.forms.models import (
    Form,
    FormAnswer,
    FormKind,
    FormPurpose,
    FormResponse,
    FormUse,
    ResponseChannel,
    ResponseStatus,
)
from openline.forms.responses import response_answers, response_answers_save, response_start
from openline.forms.schema import (
    Answer,
    Answers,
    AnswersError,
    Field,
    Schema,
    Shown,
    answers_clean,
    is_shown,
    missing,
    schema_load,
    severity,
)
from openline.forms.selectors import form_use_for
from openline.messaging.models import Conversation, RiskLevel
from openline.messaging.services.priority import conversation_set_risk_level

# The purposes filled in in the pane, and those only shown there.
FILLED = (FormPurpose.CONTACT, FormPurpose.RISK)
SURVEYS = (FormPurpose.PRE_SURVEY, FormPurpose.POST_SURVEY)
RawAnswers = Mapping[str, list[str]]


def pane_form_for(*, conversation: Conversation, purpose: str) -> Form | None:
    """The form the pane offers for ``purpose``: the inbox's use; for the risk assessment,
    else the organization's first risk screener in use."""
    use = form_use_for(number_id=conversation.number_id, purpose=purpose)
    if use is not None:
        return use.form
    if purpose != FormPurpose.RISK:
        return None
    return (
        Form.objects.select_related("current_version")
        .filter(
            organization_id=conversation.organization_id,
            kind=FormKind.RISK_SCREENER,
            archived_at__isnull=True,
            current_version__isnull=False,
        )
        .order_by("created_at", "pk")
        .first()
    )


def latest_response(*, conversation_id: int, purpose: str) -> FormResponse | None:
    """The conversation's latest response for ``purpose`` (with form and version)."""
    return (
        FormResponse.objects.filter(conversation_id=conversation_id, purpose=purpose)
        .select_related("form", "version", "answered_by")
        .order_by("-created_at", "-pk")
        .first()
    )


def can_fill(*, membership: Membership, conversation: Conversation) -> bool:
    """Call after checking the member may read the conversation."""
    return membership.can_manage or conversation.assigned_to_id == membership.user_id


# --- showing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRow:
    field: Field
    values: list[str]
    text: str  # the answer as shown (option labels)
    error: str
    visible: bool  # show-if: shown given the answers so far


@dataclass
class PaneForm:
    """One form in the pane: its questions (of the response's version once answered), the
    answers shown (stored, or as just submitted) and the problems found."""

    purpose: str
    form: Form
    schema: Schema
    version_number: int
    response: FormResponse | None
    values: dict[str, list[str]]
    editable: bool
    errors: dict[str, str] = field(default_factory=dict)
    notice: str = ""

    @property
    def answers(self) -> Answers:
        return {key: [Answer(v) for v in items] for key, items in self.values.items()}

    @property
    def sections(self) -> list[tuple[str, list[FieldRow]]]:
        """Each section's title with its questions as shown now."""
        answers = self.answers
        return [
            (section.title, [self._row(f, answers) for f in section.fields])
            for section in self.schema.sections
        ]

    def _row(self, field_: Field, answers: Answers) -> FieldRow:
        values = self.values.get(field_.key, [])
        labelled = []
        for value in values:
            option = field_.option(value)
            labelled.append(Answer(value, option.label if option else ""))
        return FieldRow(
            field=field_,
            values=values,
            text=Shown(field_, labelled).text,
            error=self.errors.get(field_.key, ""),
            visible=is_shown(self.schema, field_, answers),
        )

    @property
    def status(self) -> str:
        return self.response.status if self.response else ""

    @property
    def old_version(self) -> bool:
        return (
            self.response is not None and self.response.version_id != self.form.current_version_id
        )

    @property
    def risk_label(self) -> str:
        if self.purpose != FormPurpose.RISK or self.status != ResponseStatus.COMPLETE:
            return ""
        level = self.response.risk_level if self.response else None
        return RiskLevel(level).label if level else "None identified"

    @property
    def missing_labels(self) -> list[str]:
        return [f.label for f in missing(self.schema, self.answers)]


def pane_form(
    *, conversation: Conversation, purpose: str, editable: bool, response: FormResponse | None
) -> PaneForm | None:
    """The pane's form for ``purpose`` with ``response``'s answers (or none yet)."""
    form = response.form if response is not None else None
    current = pane_form_for(conversation=conversation, purpose=purpose)
    if current is not None and (form is None or form.pk == current.pk):
        form = current
    if form is None:
        return None
    version = response.version if response is not None else form.current_version
    if version is None:
        return None
    values: dict[str, list[str]] = {}
    if response is not None:
        values = {k: [a.value for a in v] for k, v in response_answers(response).items()}
    return PaneForm(
        purpose=purpose,
        form=form,
        schema=schema_load(version.schema),
        version_number=version.number,
        response=response,
        values=values,
        editable=editable,
    )


def pane_sections(
    *, conversation: Conversation, editable: bool
) -> tuple[list[PaneForm], list[PaneForm]]:
    """The contact form and risk assessment (those in use or answered), and the surveys
    answered: a fixed handful of queries, however many forms and answers (the pane is
    redrawn on every change to the conversation)."""
    responses = list(
        FormResponse.objects.filter(conversation_id=conversation.pk)
        .select_related("form", "version", "answered_by")
        .order_by("created_at", "pk")
    )
    values = _values_of(responses)
    offered = _offered(conversation)
    forms = []
    for purpose in FILLED:
        response = next((r for r in reversed(responses) if r.purpose == purpose), None)
        form = offered.get(purpose)
        if response is not None and (form is None or form.pk != response.form_id):
            form = response.form
        if form is None:
            continue
        version = response.version if response is not None else form.current_version
        if version is None:
            continue
        forms.append(
            PaneForm(
                purpose=purpose,
                form=form,
                schema=schema_load(version.schema),
                version_number=version.number,
                response=response,
                values=values.get(response.pk, {}) if response else {},
                editable=editable,
            )
        )
    surveys = [_read_only(r, values.get(r.pk, {})) for r in responses if r.purpose in SURVEYS]
    return forms, surveys


def _offered(conversation: Conversation) -> dict[str, Form]:
    """The forms the pane offers, by purpose, in one query: the inbox's uses; for the risk
    assessment without one, the organization's first risk screener. (A form an inbox uses
    for both purposes counts for one.)"""
    use = FormUse.objects.filter(
        form=OuterRef("pk"), number_id=conversation.number_id, purpose__in=FILLED
    ).values("purpose")[:1]
    forms = (
        Form.objects.select_related("current_version")
        .filter(
            organization_id=conversation.organization_id,
            archived_at__isnull=True,
            current_version__isnull=False,
        )
        .annotate(use_purpose=Subquery(use))
        .filter(Q(use_purpose__isnull=False) | Q(kind=FormKind.RISK_SCREENER))
        .order_by("created_at", "pk")
    )
    offered: dict[str, Form] = {}
    screener = None
    for form in forms:
        purpose = form.use_purpose
        if purpose:
            offered[purpose] = form
        elif screener is None:
            screener = form
    if screener is not None:
        offered.setdefault(FormPurpose.RISK, screener)
    return offered


def _values_of(responses: list[FormResponse]) -> dict[int, dict[str, list[str]]]:
    """Each response's answer values by field, in one query."""
    rows = FormAnswer.objects.filter(response_id__in=[r.pk for r in responses]).order_by("id")
    values: dict[int, dict[str, list[str]]] = {}
    for response_id, key, value in rows.values_list("response_id", "field_key", "value"):
        values.setdefault(response_id, {}).setdefault(key, []).append(value)
    return values


def _read_only(response: FormResponse, values: dict[str, list[str]] | None = None) -> PaneForm:
    if values is None:
        values = {k: [a.value for a in v] for k, v in response_answers(response).items()}
    return PaneForm(
        purpose=response.purpose,
        form=response.form,
        schema=schema_load(response.version.schema),
        version_number=response.version.number,
        response=response,
        values=values,
        editable=False,
    )


def conversation_forms(*, conversation_id: int) -> list[PaneForm]:
    """Every response given for a conversation, read-only, oldest first (export, print)."""
    responses = (
        FormResponse.objects.filter(conversation_id=conversation_id)
        .select_related("form", "version", "answered_by")
        .order_by("created_at", "pk")
    )
    return [_read_only(response) for response in responses]


def contact_latest_risk(*, organization_id: int, contact_id: int) -> FormResponse | None:
    """The person's latest completed risk assessment, across their conversations."""
    return (
        FormResponse.objects.filter(
            organization_id=organization_id,
            contact_id=contact_id,
            purpose=FormPurpose.RISK,
            status=ResponseStatus.COMPLETE,
        )
        .select_related("form")
        .order_by("-completed_at", "-pk")
        .first()
    )


# --- saving ---------------------------------------------------------------------------------


class FormsUnavailable(ValueError):
    """Nothing to fill in for that purpose (no form in use), or not this member's to fill."""


@transaction.atomic
def pane_form_save(
    *,
    membership: Membership,
    conversation: Conversation,
    purpose: str,
    raw: Mapping[str, list[str]],
    complete: bool,
) -> PaneForm:
    """Save the answers typed in the pane: as a draft (only each answer checked), or, when
    ``complete`` or once the response is complete, with the full check. Answers to
    questions hidden by show-if are dropped. Raises AnswersError (each message naming its
    field) with nothing saved, FormsUnavailable when there is no form to fill."""
    if purpose not in FILLED or not can_fill(membership=membership, conversation=conversation):
        raise FormsUnavailable("You cannot fill in this form.")
    response = latest_response(conversation_id=conversation.pk, purpose=purpose)
    item = pane_form(conversation=conversation, purpose=purpose, editable=True, response=response)
    if item is None:
        raise FormsUnavailable("This inbox has no such form.")
    full = complete or item.status == ResponseStatus.COMPLETE
    item.values = {k: list(v) for k, v in raw.items()}
    answers = answers_clean(item.schema, _single(raw), partial=not full)
    if response is None or response.status not in (
        ResponseStatus.IN_PROGRESS,
        ResponseStatus.COMPLETE,
    ):
        response = response_start(
            form=item.form,
            purpose=purpose,
            channel=ResponseChannel.CONSOLE,
            conversation_id=conversation.pk,
            contact_id=conversation.contact_id,
            answered_by_id=membership.user_id,
        )
    _store(membership, conversation, response, answers, full=full)
    item.response = response
    item.values = {k: [a.value for a in v] for k, v in answers.items()}
    return item


def _single(raw: Mapping[str, list[str]]) -> dict[str, object]:
    """A list for fields of several answers, else the one value (or the list, refused)."""
    return {key: (values if len(values) != 1 else values[0]) for key, values in raw.items()}


def _store(
    membership: Membership,
    conversation: Conversation,
    response: FormResponse,
    answers: Answers,
    *,
    full: bool,
) -> None:
    was_complete = response.status == ResponseStatus.COMPLETE
    before = response.risk_level
    level = (severity(answers) or None) if response.purpose == FormPurpose.RISK else None
    response.answered_by_id = membership.user_id
    response.save(update_fields=["answered_by"])
    response_answers_save(
        response=response,
        answers=answers,
        status=ResponseStatus.COMPLETE if full else ResponseStatus.IN_PROGRESS,
        risk_level=level if full else None,
    )
    if response.purpose != FormPurpose.RISK or not full:
        return
    if conversation.risk_level != level:
        conversation_set_risk_level(conversation=conversation, risk_level=level)
    if not was_complete or before != level:
        audit_record(
            organization_id=conversation.organization_id,
            actor_id=membership.user_id,
            action="risk_assessment.complete",
            object_type="conversation",
            object_id=conversation.pk,
            detail=f"Risk: {RiskLevel(level).label.lower() if level else 'none identified'}",
        )


__all__ = [
    "AnswersError",
    "FormsUnavailable",
    "PaneForm",
    "can_fill",
    "contact_latest_risk",
    "conversation_forms",
    "pane_form_save",
    "pane_sections",
]
