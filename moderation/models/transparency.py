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
    """How many of one thing happened on one day: in all (dimension ""), or with one value of one
    attribute (a category, a language, an entity kind...).

    Each attribute is stored on its own: the pages split a figure by one attribute at a time, and
    a full cross of them all was ten times the rows. A day's rows are replaced together.
    """

    class Metric(models.TextChoices):
        REPORTS = "reports", _("reports")
        CASES = "cases", _("cases")
        BLOCKS = "blocks", _("blocks")
        UNBLOCKS = "unblocks", _("unblocks")
        DECLINES = "declines", _("declines")

    day = models.DateField()
    metric = models.CharField(max_length=16, choices=Metric.choices)
    # "" for the day's total; else category, language, kind, source, actor, or two of them joined
    # by "+" (category+source of reports, kind+category of blocks), as figures.DIMENSIONS says.
    dimension = models.CharField(max_length=32, blank=True, default="")
    # The attribute's value ("" when it has none: uncategorised, no entity...); for two attributes,
    # both values joined by "+"; for the actor, the user's id.
    value = models.CharField(max_length=64, blank=True, default="")
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["metric", "dimension", "day", "value"], name="daily_count_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.metric} {self.dimension}={self.value}: {self.count}"


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
    decided_at = models.DateTimeField()
    seconds = models.PositiveBigIntegerField(help_text=_("From the case's first report to this decision."))

    class Meta:
        # A period's percentiles read only this index (an index-only scan on PostgreSQL). Not
        # `include`: SQLite cannot, and warns on every command.
        indexes = [
            models.Index(fields=["decided_at", "seconds", "kind", "category", "actor"], name="first_decision_period")
        ]

    def __str__(self) -> str:
        return f"{self.kind} of case {self.case_id} after {self.seconds} s"


class RollupState(models.Model):
    """A single row: when the rollup last caught up, which tells the next refresh where to look."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    # The start of the last refresh that committed: everything that changed before it is counted.
    refreshed_at = models.DateTimeField(null=True, blank=True)
    days_recomputed = models.PositiveIntegerField(default=0)
    cases_recomputed = models.PositiveIntegerField(default=0)
    # Open cases by age at `refreshed_at`: {"buckets": [[upper bound in seconds or null, count]...],
    # "oldest": case id or null} (queries.backlog).
    backlog = models.JSONField(default=dict)
    # The times to decision of the dashboard's preset periods at `refreshed_at`:
    # {"<first>:<last>": queries.TimeToDecision.as_json()}.
    times = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"transparency rollup as of {self.refreshed_at}"
