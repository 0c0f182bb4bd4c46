from __future__ import annotations

from django import forms

from openline.alerts.models import AlertPolicy, AlertProfile


class PolicyForm(forms.ModelForm):
    class Meta:
        model = AlertPolicy
        fields = ["enabled", "reminder_minutes", "reminders", "escalate_after", "after_hours_phone"]
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
            "arrives while this inbox is offline. Leave empty for none.",
        }


class ProfileForm(forms.ModelForm):
    permit = forms.BooleanField(required=False, label="I permit SMS to this phone")

    class Meta:
        model = AlertProfile
        fields = ["mobile", "new_conversation_sms"]
        labels = {
            "mobile": "Mobile number",
            "new_conversation_sms": "New conversation alert by SMS",
        }
