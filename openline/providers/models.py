from __future__ import annotations

import secrets

from django.db import models

from openline.core.crypto import EncryptedJSONField
from openline.core.models import Organization


class NumberKind(models.TextChoices):
    LONG_CODE = "long_code", "Long code"
    TOLL_FREE = "toll_free", "Toll-free"
    SHORT_CODE = "short_code", "Short code"
    LANDLINE = "landline", "Text-enabled landline"


# Carrier defaults in segments per second (US/CA); admins override per number.
DEFAULT_SEGMENTS_PER_SECOND = {
    NumberKind.LONG_CODE: 1.0,
    NumberKind.TOLL_FREE: 3.0,
    NumberKind.SHORT_CODE: 100.0,
    NumberKind.LANDLINE: 1.0,
}


def _webhook_key() -> str:
    return secrets.token_urlsafe(12)


class Number(models.Model):
    """A sending/receiving number of an organization; each is an inbox."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    provider = models.CharField(max_length=30)
    e164 = models.CharField(max_length=20)
    name = models.CharField(max_length=100, blank=True, help_text="Inbox name")
    kind = models.CharField(max_length=12, choices=NumberKind.choices, default=NumberKind.LONG_CODE)
    segments_per_second = models.FloatField(default=1.0)
    # Calls started per second (Twilio's default CPS for a number is 1).
    calls_per_second = models.FloatField(default=1.0)
    # Credentials and provider options, encrypted at rest; never logged.
    config = EncryptedJSONField(blank=True, default=dict)
    # Unguessable part of the webhook URL, so URLs cannot be enumerated.
    webhook_key = models.CharField(max_length=32, unique=True, default=_webhook_key)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "e164"], name="uniq_provider_number")
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return self.name or self.e164

    @property
    def simulated(self) -> bool:
        """Reaches only simulated phones (the sandbox): its consent is kept apart."""
        from openline.providers.registry import is_simulated

        return is_simulated(self.provider)

    @property
    def toll_free(self) -> bool:
        return self.kind == NumberKind.TOLL_FREE


from openline.providers.sandbox.models import SandboxCall, SandboxMessage  # noqa: E402,F401  (app models)
