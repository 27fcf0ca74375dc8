"""The audit log for leads and auditors: filters, keyset pages, CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, time

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

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


def _entries(form: AuditFilterForm) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.select_related("actor", "case", "entity", "report").order_by("-id")
    if not form.is_valid():
        return entries
    data = form.cleaned_data
    if data["actor"]:
        entries = entries.filter(actor_label=data["actor"])
    if data["action"]:
        entries = entries.filter(action=data["action"])
    if data["case"]:
        entries = entries.filter(case__reference__iexact=data["case"].strip())
    if data["entity"]:
        entries = entries.filter(entity__url__icontains=data["entity"].strip())
    tz = timezone.get_current_timezone()
    if data["since"]:
        entries = entries.filter(created_at__gte=datetime.combine(data["since"], time.min, tzinfo=tz))
    if data["until"]:
        entries = entries.filter(created_at__lte=datetime.combine(data["until"], time.max, tzinfo=tz))
    return entries


@require_GET
@login_required
def audit_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    can = _require_auditor(request)
    form = AuditFilterForm(request.GET)
    entries = _entries(form)
    before = form.cleaned_data.get("before") if form.is_valid() else None
    if before:
        entries = entries.filter(pk__lt=before)
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
def audit_export(request: AuthenticatedHttpRequest) -> HttpResponse:
    _require_auditor(request)
    entries = _entries(AuditFilterForm(request.GET))
    response = StreamingHttpResponse(_csv_rows(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="abusedesk-audit.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
