"""The audit log's entries: append-only, hash-chained (moderation/audit/)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from reports.models import Case, Entity, Report


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
    HASH_BANK_SAVED = "known_content.bank_saved", _("hash bank saved")
    HASHES_IMPORTED = "known_content.imported", _("hash list imported")
    CASE_MEDIA_BANKED = "known_content.media_banked", _("case media added to a hash bank")
    KNOWN_CONTENT_MATCHED = "known_content.matched", _("known content matched (automated detection)")


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
