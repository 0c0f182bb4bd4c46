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


class SandboxCall(models.Model):
    """A call the simulated carrier placed to a simulated phone. It rings for a while
    (the phone simulator can answer it), then, unanswered, ends as its number's test
    suffix says (see sandbox.provider)."""

    organization = models.ForeignKey("core.Organization", on_delete=models.CASCADE)
    number = models.ForeignKey("providers.Number", on_delete=models.CASCADE)
    to = models.CharField(max_length=20)
    provider_call_id = models.CharField(max_length=64, unique=True)
    call_id = models.BigIntegerField()  # OpenLine's call, from the callback URLs
    time_limit = models.PositiveIntegerField(default=120)
    # ringing -> in-progress (answered in the simulator) -> completed | busy | no-answer | failed
    status = models.CharField(max_length=12, default="ringing")
    answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["number", "to", "status"])]
