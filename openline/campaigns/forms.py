from __future__ import annotations

from typing import Any

from django import forms

from openline.campaigns.compose import MERGE_FIELDS
from openline.campaigns.models import VOICE_LANGUAGES, BroadcastChannel, ReplyMode, Segment
from openline.campaigns.services import MAX_ANSWER, MAX_NAME
from openline.contacts.models import CustomField, Tag
from openline.messaging.services.calls import MAX_SAY
from openline.providers.models import Number

CONDITION_ROWS = 3
_CONDITION_PREFIX = tuple(f"c{row}_" for row in range(CONDITION_ROWS))
# Shown in their own fieldset on the compose page, for a call only.
VOICE_FIELDS = ("recording_id", "say", "language")
OPS = [
    ("equals", "is"),
    ("before", "is before / less than"),
    ("after", "is on or after / more than"),
    ("empty", "is empty / never"),
]


class BroadcastForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME, help_text="For you; recipients never see it.")
    channel = forms.ChoiceField(
        # Not "Text message": the message's own field is labelled "Message".
        choices=[(BroadcastChannel.SMS, "Text (SMS)"), (BroadcastChannel.VOICE, "Voice call")],
        initial=BroadcastChannel.SMS,
        required=False,  # a text message unless chosen
        widget=forms.RadioSelect,
        label="Send as",
        help_text="A call also reaches landlines. It plays a recording or reads a text aloud, "
        "then says “To stop these calls, press 9.”",
    )
    body = forms.CharField(
        required=False,
        label="Message",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Merge fields: "
        + ", ".join("{" + name + "} (" + what + ")" for name, what in MERGE_FIELDS.items())
        + ". A person's first broadcast ends with “Reply STOP to opt out.”",
    )
    recording_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    say = forms.CharField(
        required=False,
        max_length=MAX_SAY,
        label="Or a text read aloud",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Read by the phone company's computer voice. Leave empty to play the recording.",
    )
    language = forms.ChoiceField(
        choices=VOICE_LANGUAGES, initial="en-US", label="Read in", required=False
    )
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(),
        required=False,
        label="A saved audience",
        empty_label="— or choose people below —",
        help_text="Everything below about who gets it is then taken from the saved audience.",
    )
    everyone = forms.BooleanField(
        required=False, label="Everyone in Contacts", help_text="Instead of choosing tags."
    )
    include_tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.none(),
        required=False,
        label="People tagged",
        widget=forms.CheckboxSelectMultiple,
    )
    exclude_tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.none(),
        required=False,
        label="Leave out people tagged",
        widget=forms.CheckboxSelectMultiple,
    )
    numbers = forms.ModelMultipleChoiceField(
        queryset=Number.objects.none(),
        label="Send from",
        widget=forms.CheckboxSelectMultiple,
        help_text="Several numbers share the load; each person keeps the number they "
        "had a broadcast from before.",
    )

    reply_mode = forms.ChoiceField(
        choices=ReplyMode.choices,
        initial=ReplyMode.QUEUE,
        widget=forms.RadioSelect,
        label="Replies",
        help_text="Either way, every reply waits in the queue: nothing a person texts is lost.",
    )
    not_monitored_text = forms.CharField(
        required=False,
        max_length=MAX_ANSWER,
        label="Answer to replies",
        help_text="Sent once to each person who replies, if you chose to answer. "
        "Empty: “Replies to this number are not monitored.” and your organization's name.",
    )

    def __init__(self, *args: Any, organization_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tags = Tag.objects.filter(organization_id=organization_id)
        for name in ("include_tags", "exclude_tags"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelMultipleChoiceField)
            field.queryset = tags
        numbers = self.fields["numbers"]
        assert isinstance(numbers, forms.ModelMultipleChoiceField)
        numbers.queryset = Number.objects.filter(
            organization_id=organization_id, is_active=True
        ).order_by("id")
        segment = self.fields["segment"]
        assert isinstance(segment, forms.ModelChoiceField)
        segment.queryset = Segment.objects.filter(organization_id=organization_id)
        self.add_condition_fields(organization_id)

    def add_condition_fields(self, organization_id: int) -> None:
        targets: list[tuple[str, str]] = [("", "—")]
        targets += [
            (f"field:{f.pk}", f.name)
            for f in CustomField.objects.filter(organization_id=organization_id)
        ]
        targets += [
            ("last_contact", "Last texted (date)"),
            ("inbox", "Inbox last used (number)"),
            ("consent", "Consent (opted_in, opted_out, opt_out_pending, no_opt_in)"),
            ("number_type", "Number type (mobile, landline, voip, unknown)"),
        ]
        self.inboxes = {
            number.e164: number.pk
            for number in Number.objects.filter(organization_id=organization_id)
        }
        for row in range(CONDITION_ROWS):
            n = row + 1
            self.fields[f"c{row}_on"] = forms.ChoiceField(
                choices=targets, required=False, label=f"Condition {n}: what"
            )
            self.fields[f"c{row}_op"] = forms.ChoiceField(
                choices=OPS, required=False, label=f"Condition {n}: how"
            )
            self.fields[f"c{row}_value"] = forms.CharField(
                required=False, max_length=200, label=f"Condition {n}: value"
            )
            self.fields[f"c{row}_exclude"] = forms.ChoiceField(
                choices=[("", "keep them"), ("1", "leave them out")],
                required=False,
                label=f"Condition {n}: keep or leave out",
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["channel"] = data.get("channel") or BroadcastChannel.SMS
        if data["channel"] == BroadcastChannel.VOICE:
            data["body"] = data.get("say", "")
            data["language"] = data.get("language") or "en-US"
            if not data.get("recording_id") and not data["body"].strip():
                self.add_error("say", "Record or upload a message, or write a text to read.")
        elif not (data.get("body") or "").strip() and "body" not in self.errors:
            self.add_error("body", "Write the message.")
        return data

    def main_fields(self) -> list[forms.BoundField]:
        return [
            self[name]
            for name in self.fields
            if not name.startswith(_CONDITION_PREFIX) and name not in VOICE_FIELDS
        ]

    def voice_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in VOICE_FIELDS]

    def condition_rows(self) -> list[list[forms.BoundField]]:
        return [
            [self[f"c{row}_{part}"] for part in ("on", "op", "value", "exclude")]
            for row in range(CONDITION_ROWS)
        ]

    def conditions(self) -> list[dict[str, Any]]:
        data = self.cleaned_data
        found = []
        for row in range(CONDITION_ROWS):
            on = data.get(f"c{row}_on")
            if not on:
                continue
            value: Any = data.get(f"c{row}_value", "").strip()
            if on == "inbox":  # typed as the number, kept as its id
                from openline.contacts.phones import InvalidPhoneNumber, normalize_phone

                try:
                    value = self.inboxes.get(normalize_phone(value), -1)
                except InvalidPhoneNumber:
                    value = -1
            found.append(
                {
                    "on": on,
                    "op": data.get(f"c{row}_op") or "equals",
                    "value": value,
                    "exclude": data.get(f"c{row}_exclude") == "1",
                }
            )
        return found

    def audience(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data.get("segment") is not None:
            return dict(data["segment"].audience)
        return {
            "everyone": bool(data["everyone"]),
            "include_tags": [tag.pk for tag in data["include_tags"]],
            "exclude_tags": [tag.pk for tag in data["exclude_tags"]],
            "filters": self.conditions(),
        }


class ScheduleForm(forms.Form):
    scheduled_for = forms.DateTimeField(
        required=False,
        label="Send at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
