"""The period (and, for leads, the breakdown) the transparency pages show."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

DEFAULT_DAYS = 30
# Periods ending today that the dashboard offers as links; the rollup keeps their times to decision.
PRESET_DAYS = (7, 30, 90)
MAX_DAYS = 366
BREAKDOWNS = [("category", _("category")), ("language", _("language")), ("kind", _("entity kind"))]


def last_days(days: int) -> tuple[date, date]:
    """The last `days` days, today included."""
    until = timezone.localdate()
    return until - timedelta(days=days - 1), until


def default_period() -> tuple[date, date]:
    return last_days(DEFAULT_DAYS)


def with_default_period(params: QueryDict) -> QueryDict:
    """The request's parameters with the default period filled in where an end is missing, so
    the form shows the period the page shows."""
    filled = params.copy()
    if not filled.get("until"):
        filled["until"] = timezone.localdate().isoformat()
    if not filled.get("since"):
        try:
            until = date.fromisoformat(filled.get("until", ""))
        except ValueError:
            return filled  # another date format, or no date: the form's clean() handles both
        filled["since"] = (until - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
    return filled


class PeriodForm(forms.Form):
    """A period of at most MAX_DAYS days; either end may be left out (the last 30 days to today)."""

    since = forms.DateField(required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        until: date = data.get("until") or timezone.localdate()
        since: date = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise forms.ValidationError(_("The period must not end before it starts."))
        if (until - since).days + 1 > MAX_DAYS:
            raise forms.ValidationError(_("Choose a period of at most %(n)d days."), params={"n": MAX_DAYS})
        data["since"], data["until"] = since, until
        return data

    def period(self) -> tuple[date, date]:
        """The period asked for if it is valid, else the default one."""
        if self.is_valid():
            return self.cleaned_data["since"], self.cleaned_data["until"]
        return default_period()


class DashboardForm(PeriodForm):
    by = forms.ChoiceField(choices=BREAKDOWNS, required=False, label=_("Split by"))

    def breakdown(self) -> str:
        return (self.cleaned_data.get("by") if self.is_valid() else "") or "category"
