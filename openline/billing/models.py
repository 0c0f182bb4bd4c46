from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from openline.core.models import Organization


class CreditKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    ALLOWANCE = "allowance", "Allowance"
    # Set aside when messages are queued (a broadcast); settled when they finish: the whole
    # reservation is released and what was used is debited.
    RESERVE = "reserve", "Reserved"
    RELEASE = "release", "Released"
    DEBIT = "debit", "Spent"
    # A message that failed before the carrier took it.
    REFUND = "refund", "Refund"


class CreditPurpose(models.TextChoices):
    """What a reservation or a debit paid for (blank for purchases and allowances)."""

    SMS = "sms", "SMS"
    VOICE = "voice", "Voice"
    ALERT = "alert", "Alerts"
    AUTO_REPLY = "auto_reply", "Automatic replies"
    REMINDER = "reminder", "Reminders"
    CAMPAIGN = "campaign", "Campaigns"


# How each kind moves the credits an organization can still use.
AVAILABLE_SIGN = {
    CreditKind.PURCHASE: 1,
    CreditKind.ALLOWANCE: 1,
    CreditKind.RESERVE: -1,
    CreditKind.RELEASE: 1,
    CreditKind.DEBIT: -1,
    CreditKind.REFUND: 1,
}


class CreditAccount(models.Model):
    """One row per organization: the ledger's sums, updated in the transaction that adds
    the entries. ``available`` never goes below zero (a database constraint): texts that
    never wait for credits (a counselor's reply, an alert, an automatic answer) that cost
    more than is available leave the rest ``owed``, paid first from the next credits
    added. At most one of the two is above zero."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="credit_account"
    )
    available = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)
    owed = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(available__gte=0) & Q(reserved__gte=0) & Q(owed__gte=0),
                name="credit_account_not_negative",
            )
        ]


class CreditEntry(models.Model):
    """The credit ledger. Rows are only ever inserted."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    kind = models.CharField(max_length=10, choices=CreditKind.choices)
    credits = models.PositiveBigIntegerField()
    purpose = models.CharField(max_length=10, choices=CreditPurpose.choices, blank=True)
    note = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The message a debit paid for, and its refund (by id: billing does not know messaging).
    message_id = models.BigIntegerField(null=True, blank=True)
    # A release or a debit that settles a reservation points at it.
    settles = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="settlements"
    )
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]
        ordering = ["created_at", "id"]
        constraints = [
            # A reservation is released once, whatever retries or races happen.
            models.UniqueConstraint(
                fields=["settles"],
                condition=Q(kind="release"),
                name="credit_reservation_released_once",
            ),
            models.CheckConstraint(condition=Q(credits__gt=0), name="credit_entry_positive"),
            # A message is debited once and refunded at most once.
            models.UniqueConstraint(
                fields=["message_id", "kind"],
                condition=Q(message_id__isnull=False),
                name="credit_message_once",
            ),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("credit entries are append-only")
        super().save(*args, **kwargs)  # type: ignore[unreachable]

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("credit entries are append-only")

    @property
    def effect(self) -> int:
        """What this entry did to the credits available: + or − its credits."""
        return AVAILABLE_SIGN[CreditKind(self.kind)] * self.credits
