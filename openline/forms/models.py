"""Forms: the contact form counselors fill in, the surveys texters and chat visitors answer,
and the risk screener, all from one definition (forms.schema), plus the imminent-risk
checklist.

A form's questions live in versions: ``FormVersion.schema`` is never changed once anyone
has answered under it (editing then makes the next version), so answers always read with
the questions they answered. Field keys stay the same from version to version, so reports
count one field across versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from openline.contacts.models import Contact
from openline.core.models import Organization
from openline.messaging.models import Conversation, RiskLevel
from openline.providers.models import Number


class FormKind(models.TextChoices):
    CUSTOM = "custom", "Form"
    # Built from the Columbia screener template (forms.cssrs): its result is a risk level.
    RISK_SCREENER = "risk_screener", "Risk screener"


class Form(models.Model):
    organization_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=FormKind.choices, default=FormKind.CUSTOM)
    description = models.CharField(max_length=500, blank=True)
    # The version new answers are given under (None until the first is saved).
    current_version = models.ForeignKey(
        "forms.FormVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    archived_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_form_name")
        ]

    def __str__(self) -> str:
        return self.name


class FormVersion(models.Model):
    """One version of a form's questions: ``schema`` as forms.schema defines it."""

    organization_id: int
    form_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    schema = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["form", "number"], name="uniq_form_version")]

    def __str__(self) -> str:
        return f"{self.form_id} v{self.number}"


class FormPurpose(models.TextChoices):
    CONTACT = "contact", "Contact form"
    PRE_SURVEY = "pre_survey", "Survey before the conversation (text)"
    POST_SURVEY = "post_survey", "Survey after the conversation"
    RISK = "risk", "Risk assessment"


class FormUse(models.Model):
    """Which form an inbox uses for one purpose."""

    organization_id: int
    number_id: int
    form_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    number = models.ForeignKey(Number, on_delete=models.CASCADE, related_name="form_uses")
    purpose = models.CharField(max_length=20, choices=FormPurpose.choices)
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="uses")
    # Contact form: it must be complete before the conversation can be closed.
    required = models.BooleanField(default=False)
    # Pre-conversation survey: the longest it may keep a new conversation from the queue.
    hold_minutes = models.PositiveSmallIntegerField(default=10)
    # Post-conversation survey: also texted after text conversations (the chat widget
    # always shows it at the end of a chat). An admin turns texting on; chat-only surveys
    # carried over from the widget's own questions do not start texting anyone.
    by_text = models.BooleanField(default=True, db_default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["number", "purpose"], name="uniq_form_use")]


class ResponseStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETE = "complete", "Complete"
    SKIPPED = "skipped", "Skipped"  # a texter sent the skip word
    EXPIRED = "expired", "Not finished"  # a survey nobody finished in time


class ResponseChannel(models.TextChoices):
    CONSOLE = "console", "Console"
    SMS = "sms", "Text"
    CHAT = "chat", "Web chat"


class FormResponse(models.Model):
    """One filling-in of a form version for one conversation (and its contact)."""

    organization_id: int
    form_id: int
    version_id: int
    conversation_id: int | None
    contact_id: int | None
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="responses")
    version = models.ForeignKey(FormVersion, on_delete=models.PROTECT, related_name="responses")
    purpose = models.CharField(max_length=20, choices=FormPurpose.choices)
    channel = models.CharField(max_length=10, choices=ResponseChannel.choices)
    conversation = models.ForeignKey(
        Conversation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="form_responses",
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="form_responses"
    )
    status = models.CharField(
        max_length=12, choices=ResponseStatus.choices, default=ResponseStatus.IN_PROGRESS
    )
    # The member who filled it in (console); empty for a texter's or visitor's answers.
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A text survey: the key of the question last sent, whose answer is awaited.
    current_field = models.CharField(max_length=60, blank=True)
    # A risk screener's result (the most severe positive item).
    risk_level = models.SmallIntegerField(choices=RiskLevel.choices, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "purpose"]),
            models.Index(fields=["organization", "form", "completed_at"]),
            models.Index(fields=["contact", "form"]),
        ]


class FormAnswer(models.Model):
    """One answer to one field: a multiple choice or checklist answer is a row per item
    ticked, so reports count answers with GROUP BY. ``value`` holds the text, the chosen
    option's value or the number as text; ``number`` and ``date`` hold typed copies."""

    organization_id: int
    response_id: int
    form_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    response = models.ForeignKey(FormResponse, on_delete=models.CASCADE, related_name="answers")
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="+")
    field_key = models.CharField(max_length=60)
    value = models.TextField()
    # The option's label as the person saw it (choices); empty for typed answers.
    label = models.CharField(max_length=300, blank=True)
    number = models.FloatField(null=True, blank=True)
    date = models.DateField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["form", "field_key"])]


class Taxonomy(models.Model):
    """A pick-list of terms (a 2-1-1 taxonomy, reasons for contact): ``terms`` is a list of
    ``{"code": str, "label": str}``. A form field copies the terms into its version, so
    editing the list never changes what was answered."""

    organization_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=120)
    terms = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_taxonomy_name")
        ]
        verbose_name_plural = "taxonomies"

    def __str__(self) -> str:
        return self.name


class RiskChecklist(models.Model):
    """The imminent-risk checklist for one conversation: active rescue steps, each marked
    done by whom and when (forms.rescue)."""

    organization_id: int
    conversation_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="risk_checklists"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField()
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One checklist under way per conversation.
            models.UniqueConstraint(
                fields=["conversation"],
                condition=models.Q(ended_at__isnull=True),
                name="uniq_open_risk_checklist",
            )
        ]


class RiskStep(models.Model):
    organization_id: int
    checklist_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    checklist = models.ForeignKey(RiskChecklist, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=40)
    label = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField()
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["checklist", "key"], name="uniq_risk_step")]
