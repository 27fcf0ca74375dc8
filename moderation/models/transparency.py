"""The transparency figures' rollup: daily counts and each case's first decision (moderation/transparency/).

Derived data, rebuilt from the desk's own tables by moderation.transparency.rollup; nothing else
writes it, and it is never a source of truth.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from moderation.models.decisions import Decision
from reports.models import Case


class DailyCount(models.Model):
    """How many of one thing happened on one day with one combination of attributes.

    A day's rows are always replaced together, so the sum over any attribute is exact for the
    metrics whose attributes have one value per thing (see Metric).
    """

    class Metric(models.TextChoices):
        # One row per combination of (category, language, source); kind is "".
        REPORTS = "reports", _("reports")
        # The same reports, once under each entity kind they name ("" when none): a report about a
        # bot and a channel counts under both, so these do not sum to the reports.
        REPORT_KINDS = "report_kinds", _("reports by entity kind")
        # Cases by the day they opened: (category, language); kind and source are "".
        CASES = "cases", _("cases")
        CASE_KINDS = "case_kinds", _("cases by entity kind")
        # Decisions by their day; a block or unblock is about one entity, so its kind is exact.
        BLOCKS = "blocks", _("blocks")
        UNBLOCKS = "unblocks", _("unblocks")
        DECLINES = "declines", _("declines")

    day = models.DateField()
    metric = models.CharField(max_length=16, choices=Metric.choices)
    category = models.CharField(max_length=32, blank=True, default="")
    language = models.CharField(max_length=8, blank=True, default="")
    kind = models.CharField(max_length=20, blank=True, default="")
    # "trusted_flagger" or "other" for reports (DSA Art. 15's "by source"); "" for the rest.
    source = models.CharField(max_length=16, blank=True, default="")
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "day", "category", "language", "kind", "source"], name="daily_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.metric} {self.category}/{self.language}/{self.kind}/{self.source}: {self.count}"


class FirstDecision(models.Model):
    """A case's first block or decline, and how long after the case's first report it came."""

    case = models.OneToOneField(Case, primary_key=True, on_delete=models.CASCADE, related_name="+")
    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Decision.Kind.choices)
    category = models.CharField(max_length=32, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_report_at = models.DateTimeField()
    decided_at = models.DateTimeField(db_index=True)
    seconds = models.PositiveBigIntegerField(help_text=_("From the case's first report to this decision."))

    def __str__(self) -> str:
        return f"{self.kind} of case {self.case_id} after {self.seconds} s"


class RollupState(models.Model):
    """A single row: when the rollup last caught up, which tells the next refresh where to look."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    # The start of the last refresh that committed: everything that changed before it is counted.
    refreshed_at = models.DateTimeField(null=True, blank=True)
    days_recomputed = models.PositiveIntegerField(default=0)
    cases_recomputed = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"transparency rollup as of {self.refreshed_at}"
