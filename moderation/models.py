from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from reports.models import Case, Entity, Report, Reporter


class PolicyCategory(models.TextChoices):
    TERRORISM = "terrorism", _("terrorism / violent extremism")
    CSAM = "csam", _("child sexual abuse material")
    VIOLENCE = "violence", _("violence")
    ILLEGAL_GOODS = "illegal_goods", _("illegal goods")
    FRAUD = "fraud", _("fraud / scam")
    SPAM = "spam", _("spam")
    IP = "intellectual_property", _("intellectual property")
    OTHER = "other", _("other")


class DeclineReason(models.TextChoices):
    NO_VIOLATION = "no_violation", _("no violation")
    OUT_OF_SCOPE = "out_of_scope", _("out of scope (private chat)")
    PROTECTED_SPEECH = "protected_speech", _("protected speech")
    DUPLICATE = "duplicate", _("duplicate")
    NOT_ENOUGH_INFORMATION = "not_enough_information", _("not enough information")


class AuditAction(models.TextChoices):
    CASE_ASSIGNED = "case.assigned", _("case assigned")
    CASE_STATUS_CHANGED = "case.status_changed", _("case status changed")
    CASE_PRIORITY_CHANGED = "case.priority_changed", _("case priority changed")
    CASE_CATEGORY_CHANGED = "case.category_changed", _("case category changed")
    CASE_DECLINED = "case.declined", _("case declined")
    CASE_MERGED = "case.merged", _("case merged")
    CASE_NOTE_ADDED = "case.note_added", _("note added")
    REPORT_MOVED = "report.moved", _("report moved")
    ENTITY_BLOCKED = "entity.blocked", _("entity blocked")
    ENTITY_UNBLOCKED = "entity.unblocked", _("entity unblocked")
    ENTITY_SPLIT = "entity.split", _("entity split into its own case")
    REPLY_QUEUED = "reply.queued", _("reply queued")
    TEMPLATE_SAVED = "template.saved", _("reply template saved")
    STAFF_CHANGED = "staff.changed", _("staff member changed")
    API_KEY_CREATED = "api_key.created", _("API key created")
    API_KEY_REVOKED = "api_key.revoked", _("API key revoked")
    STAFF_CREATED = "staff.created", _("staff member created")
    STAFF_ROLES_CHANGED = "staff.roles_changed", _("staff roles changed")
    STAFF_DEACTIVATED = "staff.deactivated", _("staff member deactivated")
    STAFF_REACTIVATED = "staff.reactivated", _("staff member reactivated")
    STAFF_PASSWORD_RESET = "staff.password_reset", _("staff password reset")
    STAFF_DELETED = "staff.deleted", _("staff member deleted")
    WEBHOOK_ENDPOINT_SAVED = "webhook.endpoint_saved", _("webhook endpoint saved")
    WEBHOOK_REDELIVERED = "webhook.redelivered", _("webhook event redelivered")
    REPORTER_FLAGS_CHANGED = "reporter.flags_changed", _("reporter marked trusted or muted")


class AuditEntry(models.Model):
    """Append-only: the database refuses UPDATE and DELETE; each row's HMAC covers its predecessor's."""

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries"
    )
    actor_label = models.CharField(max_length=150, help_text=_("Username, API client or 'system' at the time."))
    action = models.CharField(max_length=40, choices=AuditAction.choices, db_index=True)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries")
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries")
    report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries")
    data = models.JSONField(default=dict)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(
        max_length=32, blank=True, default="", help_text=_("The HMAC key of the hash; empty for the unkeyed SHA-256.")
    )

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit entries cannot be deleted")


class Decision(models.Model):
    """A block, unblock or decline, with the statement of reasons the desk owes its users."""

    class Kind(models.TextChoices):
        BLOCK = "block", _("block")
        UNBLOCK = "unblock", _("unblock")
        DECLINE = "decline", _("decline")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions")
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions")
    category = models.CharField(max_length=32, choices=PolicyCategory.choices, blank=True, default="")
    decline_reason = models.CharField(max_length=32, choices=DeclineReason.choices, blank=True, default="")
    statement = models.TextField(help_text=_("Statement of reasons."))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="decisions")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.entity or self.case}"


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


class BlocklistChange(models.Model):
    """One block or unblock, in commit order: the blocklist cursor and the enforcement event sequence.

    Rows are written after the action's audit entry, whose chain lock is held until commit, so
    ids become visible in increasing order and a consumer polling `id > cursor` misses nothing.
    """

    class Kind(models.TextChoices):
        BLOCK = "block", _("block")
        UNBLOCK = "unblock", _("unblock")

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="blocklist_changes")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    category = models.CharField(max_length=32, blank=True, default="")
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="blocklist_change")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.entity}"


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
