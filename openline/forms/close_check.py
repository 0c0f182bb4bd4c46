"""What blocks closing a conversation: its inbox's required contact form not complete, and
an imminent-risk checklist still under way (registered with messaging.hooks in
FormsConfig.ready).

Everyone who closes is held to it, a supervisor closing someone else's conversation too:
they may fill the form in themselves from the pane."""

from __future__ import annotations

from openline.forms import rescue
from openline.forms.models import FormPurpose, FormResponse, ResponseStatus
from openline.forms.responses import response_answers, version_schema
from openline.forms.schema import missing
from openline.forms.selectors import form_use_for
from openline.messaging import hooks
from openline.messaging.models import Conversation

NAME = "contact_form"


def contact_form_problems(conversation: Conversation) -> list[str]:
    """One sentence naming the required questions (shown, under the version answered) still
    unanswered, when the inbox requires its contact form and no complete one is given."""
    use = form_use_for(number_id=conversation.number_id, purpose=FormPurpose.CONTACT)
    if use is None or not use.required:
        return []
    responses = FormResponse.objects.filter(
        conversation_id=conversation.pk, purpose=FormPurpose.CONTACT
    )
    if responses.filter(status=ResponseStatus.COMPLETE).exists():
        return []
    started = responses.select_related("version").order_by("-created_at", "-pk").first()
    if started is None:  # what the form asks now, before anything is answered
        version = use.form.current_version
        fields = missing(version_schema(version), {}) if version is not None else []
    else:
        fields = missing(version_schema(started.version), response_answers(started))
    if not fields:
        return ["Mark the contact form complete." if started else "Complete the contact form."]
    return ["Complete the contact form: " + ", ".join(f.label.rstrip(".:?") for f in fields) + "."]


def register() -> None:
    hooks.close_check_set(NAME, contact_form_problems)
    hooks.close_check_set("rescue", rescue.rescue_blocks_close)
    hooks.on_closed_set("rescue", rescue.on_closed)
