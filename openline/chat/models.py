"""Website live chat: the widgets an organization embeds, and each visitor's chat session."""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from openline.core.models import Organization
from openline.messaging.models import Conversation
from openline.providers.models import Number

if TYPE_CHECKING:
    from openline.forms.models import FormResponse


def _public_id() -> str:
    return secrets.token_urlsafe(12)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ChatWidget(models.Model):
    organization_id: int
    number_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    # The inbox its chats land in (online/offline is the inbox's).
    number = models.ForeignKey(Number, on_delete=models.PROTECT, related_name="chat_widgets")
    public_id = models.CharField(max_length=24, unique=True, default=_public_id)
    display_name = models.CharField(max_length=80)
    color = models.CharField(
        max_length=7,
        default="#1f5fbf",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "a colour like #1f5fbf")],
    )
    greeting = models.CharField(max_length=500, blank=True)
    offline_text = models.CharField(max_length=1000, blank=True)
    # Other ways to reach help, under "All our counselors are busy" (offline_text if empty).
    busy_text = models.CharField(max_length=1000, blank=True)
    # Origins allowed to embed it, e.g. "https://www.example.org" (scheme, host, port).
    allowed_origins = models.JSONField(default=list)
    quick_exit_url = models.URLField(default="https://www.google.com/")
    is_active = models.BooleanField(default=True)
    # How many chats may start a minute, from everyone and from one address (chat.limits),
    # and how many of its chats may wait at once (0: no cap); over the cap visitors are
    # told it is busy instead of joining a line nobody can answer soon.
    starts_per_minute = models.PositiveIntegerField(
        default=60,
        validators=[
            MinValueValidator(1, "allow at least 1 new chat a minute"),
            MaxValueValidator(10_000, "allow at most 10000 new chats a minute"),
        ],
    )
    starts_per_address_per_minute = models.PositiveIntegerField(
        default=10,
        validators=[
            MinValueValidator(1, "allow at least 1 new chat a minute from one address"),
            MaxValueValidator(1_000, "allow at most 1000 new chats a minute from one address"),
        ],
    )
    max_waiting = models.PositiveIntegerField(
        default=25,
        validators=[MaxValueValidator(10_000, "allow at most 10000 waiting chats (0: no cap)")],
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.display_name

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and origin in self.allowed_origins


class QuestionStage(models.TextChoices):
    # The survey after the chat is the inbox's post_survey form (forms app) since
    # migration 0005 turned each widget's "post" questions into one.
    PRE = "pre", "Before the chat"


class QuestionKind(models.TextChoices):
    TEXT = "text", "Short text"
    CHOICE = "choice", "Choice"
    SCALE = "scale", "Scale from 1 to 7"
    YESNO = "yesno", "Yes or no"
    CONSENT = "consent", "Agree to terms (with a link)"


class ChatQuestion(models.Model):
    """A question a widget asks before the chat (triage).

    ``options`` is a list of ``{"label": str, "severity": 0-3}``: the choices of a choice
    question, or the "Yes" and "No" of a yes/no one. An answer's severity raises the
    conversation's priority; visitors never see severities."""

    organization_id: int
    widget_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    widget = models.ForeignKey(ChatWidget, on_delete=models.CASCADE, related_name="questions")
    stage = models.CharField(max_length=4, choices=QuestionStage.choices)
    kind = models.CharField(max_length=8, choices=QuestionKind.choices)
    prompt = models.CharField(max_length=300)
    required = models.BooleanField(default=False)
    options = models.JSONField(default=list, blank=True)
    link = models.URLField(blank=True)  # the terms a consent question links to
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.prompt


class ChatSession(models.Model):
    widget_id: int
    conversation_id: int
    widget = models.ForeignKey(ChatWidget, on_delete=models.CASCADE, related_name="sessions")
    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, related_name="chat_session"
    )
    # Only a hash: the token itself lives in the visitor's session storage.
    token_hash = models.CharField(max_length=64, unique=True)
    origin = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Closed because the visitor left while waiting (counted on the web chat page).
    abandoned = models.BooleanField(default=False)
    # The visitor's answers, each {"question", "prompt", "kind", "answer", "severity"}: the
    # prompt is kept as asked, so later edits to a question do not rewrite what was answered.
    prechat = models.JSONField(default=list, blank=True)
    # The post-chat survey of chats before the forms engine, in the same shape (read-only
    # now); a newer chat's survey is a FormResponse (purpose post_survey, channel chat).
    survey = models.JSONField(default=list, blank=True)
    # When the survey was answered, either way: a survey is taken once.
    survey_at = models.DateTimeField(null=True, blank=True)

    def survey_response(self) -> FormResponse | None:
        """The survey's FormResponse (shown with the conversation's other forms); None
        for an older chat's JSON answers, or none."""
        from openline.chat.selectors import chat_survey_response

        return chat_survey_response(self)


class ChatStartGate(models.Model):
    """When the next chat may start under one key (a widget, or a widget and a visitor's
    address) without waiting: the database side of chat.limits, as Unix seconds. The key
    is an HMAC, so visitors' addresses are never stored. Only starts write here, and a row
    whose time has passed says nothing, so new rows sweep those away."""

    key = models.CharField(max_length=64, unique=True)
    next_free = models.FloatField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key[:8]}: {self.next_free}"
