"""Console forms: shape and presence checks only. Rules live in the services."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings

from openline.console.models import SavedReply
from openline.contacts.models import FieldKind, NumberType
from openline.contacts.services.tags import MAX_TAG
from openline.core.models import Membership, Organization
from openline.messaging.selectors import QueueFilter
from openline.providers.models import Number

# Characters people type around phone numbers; a query made only of these and digits is
# searched as digits so "(202) 555-01" finds "+120255501..".
_PHONE_PUNCTUATION = re.compile(r"[\s().+\-]")


def normalize_newlines(text: str) -> str:
    """Browsers submit textarea newlines as CRLF; a carrier would bill the CR as a
    character (and in a segment of its own at a boundary), so texts use LF only."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class ConsoleForm(forms.Form):
    """Labels without Django's trailing colon."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class BodyField(forms.CharField):
    """A message body: kept exactly as typed (no strip), newlines normalized. The send
    service owns the empty and length checks so the console and API say the same."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault(
            "widget",
            forms.Textarea(attrs={"rows": 3, "maxlength": settings.OPENLINE_MAX_BODY_CHARS}),
        )
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        return normalize_newlines(super().to_python(value))


class ReplyForm(ConsoleForm):
    body = BodyField(label="Reply")


class SegmentsForm(ConsoleForm):
    body = BodyField()


class ContactSearchForm(ConsoleForm):
    q = forms.CharField(required=False, max_length=100, label="Search contacts")

    def clean_q(self) -> str:
        query: str = self.cleaned_data["q"].strip()
        compact = _PHONE_PUNCTUATION.sub("", query)
        if compact.isdigit():
            return compact
        return query


_NUMBER_TYPE_HELP = "Only mobile numbers (and numbers of unknown type) can receive texts."


class ContactCreateForm(ConsoleForm):
    name = forms.CharField(required=False, max_length=200)
    phone = forms.CharField(
        max_length=40,
        label="Phone number",
        help_text="Any common format; US numbers need no country code.",
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    number_type = forms.ChoiceField(
        required=False,
        label="Number type",
        choices=[("", "Detect from the number"), *NumberType.choices],
        help_text=_NUMBER_TYPE_HELP,
    )


class ContactEditForm(ConsoleForm):
    name = forms.CharField(required=False, max_length=200)
    number_type = forms.ChoiceField(
        label="Number type", choices=NumberType.choices, help_text=_NUMBER_TYPE_HELP
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Separated by commas, e.g. “swim team, Saturday class”. Broadcasts pick "
        "people by tag.",
    )

    def clean_tags(self) -> list[str]:
        names = [" ".join(n.split()) for n in self.cleaned_data["tags"].split(",")]
        names = list(dict.fromkeys(n for n in names if n))
        if any(len(n) > MAX_TAG for n in names):
            raise forms.ValidationError(f"A tag is at most {MAX_TAG} characters.")
        return names


class AddNumberForm(ConsoleForm):
    phone = forms.CharField(
        max_length=40,
        label="Another number",
        help_text="A second mobile, a work phone: it keeps its own consent and conversations.",
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    number_type = forms.ChoiceField(
        required=False,
        label="Number type",
        choices=[("", "Detect from the number"), *NumberType.choices],
    )


class ContactFieldsForm(ConsoleForm):
    """One input per custom field of the organization; checked by the field's kind."""

    def __init__(self, *args: Any, fields: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.custom_fields = {f"field_{field.pk}": field for field in fields}
        for name, field in self.custom_fields.items():
            if field.kind == "choice":
                choices = [("", "—"), *((c, c) for c in field.choices)]
                self.fields[name] = forms.ChoiceField(
                    label=field.name, required=False, choices=choices
                )
            else:
                kind = {"date": "date", "number": "text"}.get(field.kind, "text")
                self.fields[name] = forms.CharField(
                    label=field.name,
                    required=False,
                    max_length=500,
                    widget=forms.TextInput(attrs={"type": kind}),
                    help_text=f"{{{field.key}}} in broadcasts",
                )


class CustomFieldForm(ConsoleForm):
    name = forms.CharField(max_length=60)
    kind = forms.ChoiceField(choices=FieldKind.choices, label="Kind")
    choices = forms.CharField(
        required=False,
        max_length=2000,
        help_text="For a choice field: the choices, separated by commas.",
    )


class StartConversationForm(ConsoleForm):
    number = forms.ModelChoiceField(queryset=Number.objects.none(), label="From", empty_label=None)
    body = BodyField(label="Message")

    def __init__(self, *args: Any, organization_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["number"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Number.objects.filter(
            organization_id=organization_id, is_active=True
        ).order_by("id")


class OptInForm(ConsoleForm):
    # Not required here: the consent service refuses a blank one with its own message.
    evidence = forms.CharField(
        required=False,
        max_length=1000,
        label="How was consent given?",
        help_text='For example "Verbal consent on intake call, 3 March" or "Signed form".',
        widget=forms.Textarea(attrs={"rows": 2, "required": True}),
    )


class OptOutForm(ConsoleForm):
    text = forms.CharField(
        required=False,
        max_length=1000,
        label="What did they say? (optional)",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ConsentReviewForm(ConsoleForm):
    decision = forms.ChoiceField(
        choices=[("opt_out", "Record opt-out"), ("not_opt_out", "Not an opt-out")]
    )
    # Needed to dismiss the request (the consent service says so when it is missing).
    reason = forms.CharField(required=False, max_length=1000)


class OrganizationTextsForm(ConsoleForm):
    name = forms.CharField(max_length=200)
    contact_info = forms.CharField(
        max_length=200,
        required=False,
        label="Contact line",
        help_text="How people reach you besides texting; shown in the HELP reply.",
    )
    welcome_text = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Welcome (START, opt-in)"
    )
    opt_out_text = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Opt-out confirmation"
    )
    help_text = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Help reply"
    )
    idle_timeout_minutes = forms.IntegerField(
        required=False,
        min_value=Organization.IDLE_TIMEOUT_BOUNDS[0],
        max_value=Organization.IDLE_TIMEOUT_BOUNDS[1],
        label="Sign out after inactivity (minutes)",
        help_text=(
            "Members who have not used the console for this long are signed out, so an "
            f"unattended screen does not stay open ({Organization.IDLE_TIMEOUT_BOUNDS[0]} to "
            f"{Organization.IDLE_TIMEOUT_BOUNDS[1]} minutes). Every sign-in also ends after "
            "12 hours."
        ),
    )

    survey_skip_word = forms.CharField(
        required=False,
        max_length=20,
        label="Survey skip word",
        help_text=(
            "Texters reply with this word to skip a survey and go straight to a counselor. "
            "One word; not STOP, HELP or another keyword."
        ),
    )

    def clean_idle_timeout_minutes(self) -> int:
        minutes = self.cleaned_data.get("idle_timeout_minutes")
        return Organization.DEFAULT_IDLE_TIMEOUT_MINUTES if minutes is None else minutes

    def clean_survey_skip_word(self) -> str:
        from openline.forms.surveys.skip_word import DEFAULT, skip_word_problem

        word = (self.cleaned_data.get("survey_skip_word") or "").strip().upper() or DEFAULT
        problem = skip_word_problem(word)
        if problem is not None:
            raise forms.ValidationError(problem[0].upper() + problem[1:] + ".")
        return word

    def __init__(self, *args: Any, instance_values: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial", {name: getattr(instance_values, name) for name in self.base_fields}
        )
        super().__init__(*args, **kwargs)


class QueueForm(ConsoleForm):
    """The workspace's view, inbox filter, search and unread-only switch."""

    view = forms.ChoiceField(
        required=False,
        choices=[(v, v) for v in ("waiting", "mine", "all", "closed")],
    )
    number = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Inbox")
    q = forms.CharField(required=False, max_length=100, label="Search")
    unread = forms.BooleanField(required=False, label="Unread only")

    def __init__(self, *args: Any, numbers: list[Number], can_manage: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.can_manage = can_manage
        self.fields["number"].choices = [("", "All inboxes")] + [(n.pk, n.label) for n in numbers]

    def filters(self) -> QueueFilter:
        data = self.cleaned_data if self.is_valid() else {}
        view = data.get("view") or "waiting"
        if view == "all" and not self.can_manage:
            view = "waiting"
        return QueueFilter(
            view=view,
            number_id=data.get("number"),
            query=(data.get("q") or "").strip(),
            unread_only=bool(data.get("unread")),
        )

    def query_string(self) -> str:
        """The filters (not the view or page) for links between views."""
        filters = self.filters()
        parts = {}
        if filters.number_id:
            parts["number"] = str(filters.number_id)
        if filters.query:
            parts["q"] = filters.query
        if filters.unread_only:
            parts["unread"] = "1"
        return urlencode(parts)


class TransferForm(ConsoleForm):
    """``to`` is a member of the organization, or empty for "back to the queue"."""

    to = forms.ModelChoiceField(
        queryset=Membership.objects.none(), required=False, empty_label="Back to the queue"
    )
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, organization_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["to"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Membership.objects.filter(
            organization_id=organization_id, is_active=True
        ).select_related("user", "organization")


class CloseForm(ConsoleForm):
    wrap_up = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class NoteForm(ConsoleForm):
    body = forms.CharField(required=False, max_length=4000)


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["notify_new_conversation", "notify_new_message", "notify_desktop", "notify_sound"]
        labels = {
            "notify_new_conversation": "New conversation alert",
            "notify_new_message": "New message alert",
            "notify_desktop": "Desktop notifications",
            "notify_sound": "Sound",
        }


class SavedReplyForm(forms.ModelForm):
    class Meta:
        model = SavedReply
        fields = ["name", "shortcut", "body"]
        help_texts = {
            "shortcut": "Type /shortcut in the reply box to insert it.",
            "body": "{counselor} and {organization} are replaced by your name and the"
            " organization's.",
        }
