"""The leads' dashboard: reports, cases and blocks per day, time to decision, backlog, decisions per moderator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from moderation.models import Decision, PolicyCategory
from moderation.transparency import charts, queries, rollup
from moderation.transparency.forms import BREAKDOWNS, PRESET_DAYS, DashboardForm, last_days, with_default_period
from moderation.views import AuthenticatedHttpRequest, abilities
from reports.models import Entity


@dataclass(frozen=True, slots=True)
class Figure:
    """One charted figure and the same numbers as a table, for readers without SVG or sight."""

    chart: charts.Chart
    columns: list[str]
    rows: list[tuple[date, list[int], int]]
    # The rows as the table's <tbody> content.
    body: SafeString
    column_totals: list[int]
    total: int
    # Reports and cases that name several kinds count under each: the columns sum to more than all.
    overlapping: bool


def value_labels(by: str) -> dict[str, str]:
    """How the values of a breakdown read on the page; codes without a label are shown as they are."""
    if by == "category":
        return {"": _("uncategorised"), **{value: str(label) for value, label in PolicyCategory.choices}}
    if by == "kind":
        return {"": _("no entity"), **{value: str(label) for value, label in Entity.Kind.choices}}
    return {"": _("unknown")}


def _figure(title: str, what: str, counts: queries.PeriodCounts, labels: dict[str, str]) -> Figure:
    series = counts.series(what)
    by = counts.by
    chart = charts.stacked_bars(
        title, [day.strftime("%m-%d") for day in series.days], list(series.counts.items()), label_of=labels
    )
    values = list(series.counts)
    overlapping = by == "kind" and what != "blocks"
    per_day = counts.per_day(what) if overlapping else series.per_day
    rows = [(day, [series.counts[value][n] for value in values], per_day[n]) for n, day in enumerate(series.days)]
    totals = series.totals
    return Figure(
        chart=chart,
        columns=[labels.get(value, value) for value in values],
        rows=rows,
        body=charts.table_body((day.isoformat(), [*counts, total]) for day, counts, total in rows),
        column_totals=[totals[value] for value in values],
        total=sum(per_day),
        overlapping=overlapping,
    )


@require_GET
@login_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    can = abilities(request)
    if not can.audit:
        raise PermissionDenied("leads and auditors only")
    form = DashboardForm(with_default_period(request.GET))
    first, last = form.period()
    by = form.breakdown()
    labels = value_labels(by)
    state = rollup.current()
    counts = queries.period_counts(first, last, by)
    times = queries.time_to_decision_of(first, last, state)
    categories = value_labels("category")
    context = {
        "can": can,
        "form": form,
        "first": first,
        "last": last,
        "by": by,
        "by_label": dict(BREAKDOWNS)[by],
        "presets": [
            (days, urlencode({"since": since.isoformat(), "until": until.isoformat(), "by": by}))
            for days, (since, until) in ((days, last_days(days)) for days in PRESET_DAYS)
        ],
        "refreshed_at": state.refreshed_at,
        "totals": counts.totals(),
        "figures": [
            _figure(_("Reports per day"), "reports", counts, labels),
            _figure(_("Cases opened per day"), "cases", counts, labels),
            _figure(_("Blocks per day"), "blocks", counts, labels),
        ],
        "times": times,
        "times_by_kind": [(Decision.Kind(kind).label, d) for kind, d in times.by_kind.items()],
        "times_by_category": [(categories.get(cat, cat), d) for cat, d in times.by_category.items()],
        "moderators": queries.decisions_by_moderator(first, last, times),
        "backlog": queries.backlog(state.backlog),
    }
    if request.htmx:
        return render(request, "moderation/dashboard.html#dashboard-results", context)
    return render(request, "moderation/dashboard.html", context)
