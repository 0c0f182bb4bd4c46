from __future__ import annotations

from django.db import models


class SandboxMessage(models.Model):
    """A text the simulated carrier delivered to a simulated phone."""

    organization = models.ForeignKey("core.Organization", on_delete=models.CASCADE)
    number = models.ForeignKey("providers.Number", on_delete=models.CASCADE)
    to = models.CharField(max_length=20)
    body = models.TextField()
    provider_message_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=12, default="queued")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["number", "to", "created_at"])]
