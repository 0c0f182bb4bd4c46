"""SMS alerts to staff for waiting conversations: each inbox's policy, each person's alert
phone and preference, and a record of every alert sent (which is also what makes the sweep
idempotent: a step is due only if its record does not exist yet)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from openline.core.models import Organization
from openline.messaging.models import Conversation, Message
from openline.providers.models import Number

REMINDER_MINUTES = [0, 1, 2, 3, 5, 10, 15, 20, 30]
ATTEMPTS = [0, 1, 2, 3, 4, 5]


class AlertPolicy(models.Model):
    """An inbox's alert settings (iCarol's mobile alerts). 0 means "never"."""

    organization_id: int
    number_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    number = models.OneToOneField(Number, on_delete=models.CASCADE, related_name="alert_policy")
    enabled = models.BooleanField(default=False)
    reminder_minutes = models.PositiveSmallIntegerField(
        default=5,
        choices=[(0, "Never")] + [(m, f"Every {m} min") for m in REMINDER_MINUTES[1:]],
    )
    reminders = models.PositiveSmallIntegerField(
        default=2, choices=[(0, "Never")] + [(n, str(n)) for n in ATTEMPTS[1:]]
    )
    escalate_after = models.PositiveSmallIntegerField(
        default=0, choices=[(0, "Never")] + [(n, f"After {n}") for n in ATTEMPTS[1:]]
    )
    # CoAction's after-hours notice: a content-free text to this phone (E.164) when a text
    # arrives while the inbox is offline. Blank = off. Notices go only once the phone is
    # confirmed with a code texted to it (an admin cannot point them at a stranger).
    after_hours_phone = models.CharField(max_length=20, blank=True)
    # A high-risk conversation (priority high or urgent) still waiting after this many
    # minutes alerts the supervisors and admins on shift (alerts.sweep). 0 = never.
    high_risk_minutes = models.PositiveSmallIntegerField(default=3, db_default=3)
    after_hours_confirmed_phone = models.CharField(max_length=20, blank=True)
    after_hours_confirmed_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def after_hours_confirmed(self) -> bool:
        return bool(self.after_hours_phone) and (
            self.after_hours_phone == self.after_hours_confirmed_phone
        )


class AlertProfile(models.Model):
    """A person's alert phone and preference in one organization. Whether they permit texts
    to that phone is not stored here: it is the consent ledger's (so a STOP revokes it)."""

    organization_id: int
    user_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_profiles"
    )
    mobile = models.CharField(max_length=20, blank=True)  # E.164
    # The mobile as confirmed by a code texted to it; alerts go only to a confirmed mobile,
    # so typing someone else's number makes OpenLine send them one code and nothing more.
    confirmed_phone = models.CharField(max_length=20, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    new_conversation_sms = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_alert_profile")
        ]

    @property
    def is_confirmed(self) -> bool:
        return bool(self.mobile) and self.mobile == self.confirmed_phone


class AlertPhoneCode(models.Model):
    """One confirmation code texted to an alert phone: a person's (``profile``) or an
    inbox's after-hours phone (``policy``). Only a keyed hash of the code is kept; the rows
    stay after use so that the send limits can count them."""

    organization_id: int
    profile_id: int | None
    policy_id: int | None
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    profile = models.ForeignKey(
        AlertProfile, null=True, blank=True, on_delete=models.CASCADE, related_name="codes"
    )
    policy = models.ForeignKey(
        AlertPolicy, null=True, blank=True, on_delete=models.CASCADE, related_name="codes"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    phone = models.CharField(max_length=20)
    code_hash = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    expires_at = models.DateTimeField()
    # Set when the code confirmed the phone or was withdrawn (number changed, permission
    # unticked, a newer code sent): it can no longer be used.
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(profile__isnull=False, policy__isnull=True)
                | models.Q(profile__isnull=True, policy__isnull=False),
                name="alert_code_one_owner",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "phone", "created_at"]),
            models.Index(fields=["requested_by", "created_at"]),
        ]


class AlertKind(models.TextChoices):
    NEW = "new", "New conversation"
    REMINDER = "reminder", "Reminder"
    ESCALATION = "escalation", "Escalation"
    AFTER_HOURS = "after_hours", "After-hours notice"
    # A high-risk conversation (priority high or urgent) has waited past the inbox's limit.
    HIGH_RISK = "high_risk", "High-risk wait"
    # A counselor started the imminent-risk checklist: supervisors on shift are told.
    RESCUE = "rescue", "Imminent risk"


class Alert(models.Model):
    """One alert text to one phone. ``message`` is the text as sent (its status is the
    delivery status); empty with ``refused`` set when the send service refused it."""

    organization_id: int
    conversation_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="alerts")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    phone = models.CharField(max_length=20)
    kind = models.CharField(max_length=12, choices=AlertKind.choices)
    attempt = models.PositiveSmallIntegerField()  # 1 = the first alert, 2 = first reminder...
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    refused = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "kind", "attempt", "phone"], name="uniq_alert_step"
            )
        ]
        indexes = [models.Index(fields=["organization", "created_at"])]
