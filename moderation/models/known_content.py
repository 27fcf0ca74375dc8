"""Known content: banks of hashes of media already judged, and the matches found against them
(moderation/known_content/)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from reports.models import Attachment


class HashKind(models.TextChoices):
    MD5 = "md5", "MD5"
    SHA256 = "sha256", "SHA-256"
    PDQ = "pdq", "PDQ"


class HashBank(models.Model):
    """A named list of hashes (a TCAP or GIFCT export, or the desk's own); never deleted."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=500, blank=True, default="")
    active = models.BooleanField(default=True, help_text=_("Inactive banks are kept but never matched."))
    # Bumped by every change of the bank's hashes, so each worker's PDQ index knows it is stale.
    revision = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BankedHash(models.Model):
    """One hash in a bank, with what its list said about it."""

    bank = models.ForeignKey(HashBank, on_delete=models.PROTECT, related_name="hashes")
    kind = models.CharField(max_length=8, choices=HashKind.choices)
    value = models.CharField(max_length=64, help_text=_("Lower-case hex."))
    label = models.CharField(max_length=200, blank=True, default="")
    source = models.CharField(max_length=200, blank=True, default="")
    listed_on = models.DateField(null=True, blank=True, help_text=_("The date the list gave."))
    quality = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("PDQ quality, when listed."))
    # Set when a lead added a blocked case's media to the bank.
    attachment = models.ForeignKey(
        Attachment, null=True, blank=True, on_delete=models.PROTECT, related_name="banked_hashes"
    )
    added_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bank", "kind", "value"], name="banked_hash_unique")]
        indexes = [models.Index(fields=["kind", "value"], name="banked_hash_lookup")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class KnownContentMatch(models.Model):
    """An attachment found in a bank: automated detection, for a moderator to weigh, never a decision."""

    attachment = models.ForeignKey(Attachment, on_delete=models.PROTECT, related_name="known_content_matches")
    banked_hash = models.ForeignKey(BankedHash, on_delete=models.PROTECT, related_name="matches")
    kind = models.CharField(max_length=8, choices=HashKind.choices)
    distance = models.PositiveSmallIntegerField(default=0, help_text=_("PDQ Hamming distance; 0 for exact."))
    # Copied from the bank when matched, so the evidence reads the same after a bank is renamed.
    bank_name = models.CharField(max_length=64)
    label = models.CharField(max_length=200, blank=True, default="")
    matched_at = models.DateTimeField()

    class Meta:
        ordering = ["-matched_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["attachment", "banked_hash"], name="known_content_match_unique")]

    def __str__(self) -> str:
        return f"{self.bank_name}: {self.label or self.kind}"
