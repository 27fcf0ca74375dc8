"""Internal notes on cases."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reports.models import Case


class Note(models.Model):
    """An internal note on a case; never sent to reporters."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notes")
    text = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note on {self.case} by {self.author}"
