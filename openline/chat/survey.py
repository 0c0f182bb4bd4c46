"""The post-chat survey: the post_survey form of the widget's inbox (forms app), so a web
chat and a text conversation in the same inbox are asked the same questions and counted
in the same reports ("one engine for both channels").

The widget gets the current version's questions without severities, renders every field
kind and applies show-if as the visitor answers; the answers are checked again here with
forms.schema.answers_clean (answers to questions hidden by show-if are dropped) and stored
as one complete FormResponse for the chat's conversation, once."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from openline.chat.models import ChatSession, ChatWidget
from openline.chat.services import ChatError
from openline.forms.models import FormPurpose, FormResponse, FormUse, ResponseChannel
from openline.forms.models import ResponseStatus as Status
from openline.forms.responses import response_answers_save, response_start, version_schema
from openline.forms.schema import AnswersError, Field, FieldKind, answers_clean
from openline.forms.selectors import form_use_for


def survey_use(widget: ChatWidget) -> FormUse | None:
    """The form the widget's inbox uses after a conversation, if it has questions (and is
    the widget's organization's: an inbox's use always is, this only makes sure)."""
    use = form_use_for(number_id=widget.number_id, purpose=FormPurpose.POST_SURVEY)
    if use is None or use.form.organization_id != widget.organization_id:
        return None
    return use


def field_view(field_: Field) -> dict[str, object]:
    """A question as the visitor's widget gets it: option labels and values, never their
    severities."""
    view: dict[str, object] = {
        "key": field_.key,
        "label": field_.label,
        "kind": str(field_.kind),
        "required": field_.required,
        "help": field_.help,
        "options": [{"value": o.value, "label": o.label} for o in field_.all_options()],
        "show_if": (
            {"field": field_.show_if.field, "values": list(field_.show_if.values)}
            if field_.show_if
            else None
        ),
    }
    if field_.kind == FieldKind.NUMBER:
        view["min"], view["max"] = field_.min, field_.max
    return view


def survey_view(widget: ChatWidget) -> list[dict[str, object]]:
    """The survey's questions in form order (empty: no survey is offered)."""
    use = survey_use(widget)
    if use is None or use.form.current_version is None:
        return []
    return [field_view(f) for f in version_schema(use.form.current_version).fields()]


def survey_submit(*, session: ChatSession, raw: object) -> FormResponse:
    """Store the visitor's survey answers, once, after the chat has ended. Raises ChatError
    (closed, no survey) or forms.schema.AnswersError naming each refused field."""
    if session.ended_at is None:
        raise ChatError("survey_closed", "The survey opens when the chat has ended.")
    if session.survey_at is not None:
        raise ChatError("survey_closed", "This survey has already been answered. Thank you!")
    use = survey_use(session.widget)
    if use is None or use.form.current_version is None:
        raise ChatError("no_survey", "There is no survey to answer.")
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise AnswersError({"answers": "Answers must be an object of question keys and values."})
    answers = answers_clean(version_schema(use.form.current_version), raw)
    with transaction.atomic():
        # The session row is the once-only gate on both databases: a second submit (or two
        # at once) updates nothing and stores nothing.
        taken = ChatSession.objects.filter(pk=session.pk, survey_at__isnull=True).update(
            survey_at=timezone.now()
        )
        if not taken:
            raise ChatError("survey_closed", "This survey has already been answered. Thank you!")
        conversation = session.conversation
        response = response_start(
            form=use.form,
            purpose=FormPurpose.POST_SURVEY,
            channel=ResponseChannel.CHAT,
            conversation_id=conversation.pk,
            contact_id=conversation.contact_id,
        )
        response_answers_save(response=response, answers=answers, status=Status.COMPLETE)
    return response
