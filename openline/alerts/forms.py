from __future__ import annotations

import unicodedata

from django import forms

from openline.alerts.confirmation import CODE_DIGITS
from openline.alerts.models import AlertPolicy, AlertProfile
from openline.alerts.services import MAX_HIGH_RISK_MINUTES


class PolicyForm(forms.ModelForm):
    high_risk_minutes = forms.IntegerField(
        min_value=0,
        max_value=MAX_HIGH_RISK_MINUTES,
        required=False,  # left empty: unchanged
        label="High-risk wait alert after (minutes)",
        help_text="A conversation at high or urgent priority (a risk phrase, triage or "
        "survey answer) still waiting this long texts the supervisors and admins on shift "
        "and the on-call people, once. 0 = never.",
    )

    class Meta:
        model = AlertPolicy
        fields = [
            "enabled",
            "reminder_minutes",
            "reminders",
            "escalate_after",
            "high_risk_minutes",
            "after_hours_phone",
        ]
        labels = {
            "enabled": "Send SMS alerts for waiting conversations",
            "reminder_minutes": "Reminder frequency",
            "reminders": "Number of reminders",
            "escalate_after": "Escalate to on-call / support",
            "after_hours_phone": "After-hours notice to (optional)",
        }
        help_texts = {
            "escalate_after": "after this many unanswered attempts (the first alert counts)",
            "after_hours_phone": "A phone that gets a content-free notice when a text "
            "arrives while this inbox is offline, once it is confirmed with a code we text to "
            "it. Leave empty for none.",
        }

    def clean_high_risk_minutes(self) -> int:
        minutes = self.cleaned_data.get("high_risk_minutes")
        return self.instance.high_risk_minutes if minutes is None else int(minutes)


class ProfileForm(forms.ModelForm):
    permit = forms.BooleanField(required=False, label="I permit SMS to this phone")

    class Meta:
        model = AlertProfile
        fields = ["mobile", "new_conversation_sms"]
        labels = {
            "mobile": "Mobile number",
            "new_conversation_sms": "New conversation alert by SMS",
        }


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=20,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "size": 8}
        ),
    )

    def clean_code(self) -> str:
        # People copy codes with spaces or dashes ("123 456"), and some keyboards type
        # full-width digits: neither changes the code.
        typed = unicodedata.normalize("NFKC", self.cleaned_data["code"])
        code = "".join(ch for ch in typed if ch not in " -")
        if not (code.isascii() and code.isdigit() and len(code) == CODE_DIGITS):
            raise forms.ValidationError(
                f"The code is the {CODE_DIGITS} digits in the text we sent to the phone."
            )
        return code
