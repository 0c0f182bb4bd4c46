from __future__ import annotations

from django.db import models

from openline.core.models import Organization


class SavedReply(models.Model):
    """A canned response. ``{counselor}`` and ``{organization}`` are filled in when it is
    inserted into a reply."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=80)
    # Typed as /shortcut in the reply box.
    shortcut = models.SlugField(max_length=30)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "shortcut"], name="uniq_saved_reply_shortcut"
            )
        ]
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name
