"""The platform's systems: API keys and enforcement webhooks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from moderation.models.decisions import BlocklistChange


class ApiKey(models.Model):
    """A per-integration API key: only a SHA-256 of the secret is stored; it is shown once."""

    class Scope(models.TextChoices):
        READ = "read", _("read cases, entities and reports")
        BLOCKLIST = "blocklist", _("read the blocklist")
        REPORT = "report", _("file reports")
        DECIDE = "decide", _("block and unblock entities")
        AUDIT = "audit", _("read the audit log")

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=12, unique=True, help_text=_("Public part of the key, to recognise it."))
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class WebhookEndpoint(models.Model):
    """A platform system that hears of every block and unblock, signed with its own secret."""

    class Event(models.TextChoices):
        BLOCKED = "entity.blocked", _("entity blocked")
        UNBLOCKED = "entity.unblocked", _("entity unblocked")

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One blocklist change owed to one endpoint; delivered in sequence order, retried with back-off."""

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        GAVE_UP = "gave_up", _("gave up")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    change = models.ForeignKey(BlocklistChange, on_delete=models.PROTECT, related_name="deliveries")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["endpoint", "change_id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "change"], name="webhook_delivery_once")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.endpoint} #{self.change_id} {self.state}"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery, kept for admins: status, latency, a bounded response excerpt."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    response_excerpt = models.CharField(max_length=500, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"attempt of {self.delivery} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"
