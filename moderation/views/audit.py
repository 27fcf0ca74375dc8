"""The audit log for leads and auditors: filters, keyset pages, CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, time

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from moderation.audit.queries import AuditFilters, audit_entries
from moderation.forms import AuditFilterForm
from moderation.models import AuditEntry
from moderation.views import Abilities, AuthenticatedHttpRequest, abilities

PAGE_SIZE = 100
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _require_auditor(request: AuthenticatedHttpRequest) -> Abilities:
    can = abilities(request)
    if not can.audit:
        raise PermissionDenied("leads and auditors only")
    return can


def _entries(form: AuditFilterForm) -> QuerySet[AuditEntry] | None:
    """The entries the form asks for, each filter meaning what audit_entries (and so the API) says,
    or None, with the reason on the form, when a filter is not valid."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    # A day, in the desk's time zone, from its first to its last instant.
    tz = timezone.get_current_timezone()
    filters = AuditFilters(
        action=data["action"],
        actor=data["actor"],
        case=data["case"],
        entity=data["entity"],
        since=datetime.combine(data["since"], time.min, tzinfo=tz) if data["since"] else None,
        until=datetime.combine(data["until"], time.max, tzinfo=tz) if data["until"] else None,
    )
    try:
        return audit_entries(filters)
    except ValidationError as exc:
        form.add_error(None, exc)
        return None


@require_GET
@login_required
def audit_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    can = _require_auditor(request)
    form = AuditFilterForm(request.GET)
    entries = _entries(form)
    page: list[AuditEntry] = []
    if entries is not None:
        if form.cleaned_data["before"]:
            entries = entries.filter(pk__lt=form.cleaned_data["before"])
        page = list(entries[: PAGE_SIZE + 1])
    has_next, page = len(page) > PAGE_SIZE, page[:PAGE_SIZE]
    query = request.GET.copy()
    query.pop("before", None)
    next_query = query.copy()
    if has_next:
        next_query["before"] = str(page[-1].pk)
    context = {
        "can": can,
        "form": form,
        "entries": page,
        "has_next": has_next,
        "next_query": next_query.urlencode(),
        "filter_query": query.urlencode(),
    }
    if request.htmx:
        return render(request, "moderation/audit_list.html#audit-results", context)
    return render(request, "moderation/audit_list.html", context)


def csv_cell(value: object) -> str:
    """Text a spreadsheet shows as text: a leading formula character gets a quote in front."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(["id", "created_at", "actor", "action", "case", "entity", "report", "ip", "data", "hash"])
    for entry in entries.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                csv_cell(v)
                for v in (
                    entry.pk,
                    entry.created_at.isoformat(),
                    entry.actor_label,
                    entry.action,
                    entry.case.reference if entry.case else "",
                    entry.entity.url if entry.entity else "",
                    entry.report.public_id if entry.report else "",
                    entry.ip or "",
                    entry.data,
                    entry.hash,
                )
            ]
        )


@require_GET
@login_required
def audit_export(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    _require_auditor(request)
    form = AuditFilterForm(request.GET)
    entries = _entries(form)
    if entries is None:
        # Never the whole log in place of the part that was asked for.
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(_csv_rows(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="abusedesk-audit.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
