"""Reply templates and the replies sent to reporters."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from reports.models import Case, Report, Reporter


class ReplyTemplate(models.Model):
    """A reply to reporters in one language; placeholders are filled as data, never as template code."""

    class Purpose(models.TextChoices):
        ACKNOWLEDGEMENT = "acknowledgement", _("acknowledgement of receipt")
        BLOCKED = "blocked", _("entity blocked")
        DECLINED = "declined", _("declined")
        OTHER = "other", _("other")

    name = models.CharField(max_length=100)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.OTHER)
    language = models.CharField(max_length=8)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "language"], name="reply_template_name_language")]
        ordering = ["name", "language"]

    def __str__(self) -> str:
        return f"{self.name} [{self.language}]"

    def clean(self) -> None:
        from moderation.replies.templates import check_reply_template

        check_reply_template(self.subject, self.body, purpose=self.purpose)


class Reply(models.Model):
    """One outbound mail to one reporter, and its delivery state."""

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        DELIVERED = "delivered", _("delivered")
        BOUNCED = "bounced", _("bounced")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="replies")
    reporter = models.ForeignKey(Reporter, on_delete=models.PROTECT, related_name="replies")
    in_reply_to_report = models.ForeignKey(
        Report, null=True, blank=True, on_delete=models.PROTECT, related_name="replies"
    )
    template = models.ForeignKey(ReplyTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="replies")
    subject = models.CharField(max_length=998)
    body = models.TextField()
    message_id = models.CharField(max_length=998, unique=True)
    automatic = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    esp_message_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "replies"

    def __str__(self) -> str:
        return f"reply to {self.reporter} on {self.case} ({self.state})"
