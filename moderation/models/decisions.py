"""Decisions on entities and cases, and the blocklist changes they make."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from reports.models import Case, Entity


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
