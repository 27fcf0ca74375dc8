"""The queue: filters, search, keyset pages, a poll for new cases, and bulk actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from moderation.actions import (
    do_assign_case,
    do_block_entity,
    do_change_case_status,
    do_decline_case,
)
from moderation.forms import BulkForm, QueueFilterForm
from moderation.known_content.queries import tags_by_case
from moderation.views import (
    AuthenticatedHttpRequest,
    actor_of,
    require_lead,
    require_viewer,
)
from reports import queries
from reports.models import Case, Entity

PAGE_SIZE = 50


def _filters(form: QueueFilterForm, request: AuthenticatedHttpRequest) -> queries.QueueFilters:
    data = form.cleaned_data if form.is_valid() else {}
    return queries.QueueFilters(
        status=data.get("status") or "open",
        category=data.get("category") or "",
        language=data.get("language") or "",
        kind=data.get("kind") or "",
        assignee=data.get("assignee") or "",
        mine=bool(data.get("mine")),
        unassigned=bool(data.get("unassigned")),
        blocked=bool(data.get("blocked")),
        q=data.get("q") or "",
        sort=data.get("sort") or "newest",
        user_id=request.user.pk,
    )


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One case in the queue's table, with the distinct languages of its reports and its
    known-content tags ("bank: label")."""

    case: Case
    languages: list[str]
    known_content_tags: list[str]


def _results_context(
    request: AuthenticatedHttpRequest, params: QueryDict, page_size: int = PAGE_SIZE
) -> dict[str, object]:
    """The results fragment: one keyset page of cases, its pager and the bulk form. It is all that a
    search, a filter change or a bulk action re-renders, so it loads nothing for the filter bar."""
    form = QueueFilterForm(params)
    filters = _filters(form, request)
    after = queries.parse_cursor(form.cleaned_data.get("after") or "", filters.sort) if form.is_valid() else None
    page = list(queries.cases_for_queue(filters, after=after)[: page_size + 1])
    has_next, page = len(page) > page_size, page[:page_size]
    languages = queries.languages_by_case(case.pk for case in page)
    tags = tags_by_case(case.pk for case in page)
    query = params.copy()
    query.pop("after", None)
    next_query = query.copy()
    if has_next:
        next_query["after"] = queries.encode_cursor(page[-1], filters.sort)
    return {
        "cases": [QueueRow(case, languages.get(case.pk, []), tags.get(case.pk, [])) for case in page],
        "has_next": has_next,
        "is_first_page": after is None,
        "next_query": next_query.urlencode(),
        "first_query": query.urlencode(),
        "current_query": params.urlencode(),
        "bulk_form": BulkForm(),
    }


@require_GET
@login_required
def queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    can = require_viewer(request)
    results = _results_context(request, request.GET)
    if request.htmx:
        return render(request, "moderation/queue_list.html#queue-results", {"can": can, **results})
    counts = queries.queue_counts(request.user.pk)
    context = {
        "can": can,
        **results,
        "form": QueueFilterForm(request.GET, counts=counts, languages=queries.report_languages()),
        "counts": counts,
        "since": int(timezone.now().timestamp()),
    }
    return render(request, "moderation/queue_list.html", context)


@require_GET
@login_required
def queue_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The "N new cases" banner the queue polls; the list itself stays put, and so does the selection."""
    require_viewer(request)
    raw = request.GET.get("since", "")
    since_ts = int(raw) if raw.isdigit() else int(timezone.now().timestamp())
    since = datetime.fromtimestamp(since_ts, tz=UTC)
    context = {
        "new_count": queries.new_cases_since(since),
        "since": since_ts,
        "current_query": request.GET.get("query", ""),
    }
    return render(request, "moderation/queue_list.html#new-banner", context)


def _bulk_apply(request: AuthenticatedHttpRequest, form: BulkForm) -> list[str]:
    """Loop the one-case actions; each writes its own audit entry. Returns per-case problems."""
    data = form.cleaned_data
    actor = actor_of(request)
    problems: list[str] = []
    for case in Case.objects.filter(reference__in=data["cases"]).order_by("pk"):
        try:
            # One transaction per case: a refusal on one case must not undo the others.
            with transaction.atomic():
                if data["action"] == "assign_me":
                    do_assign_case(case, assignee=request.user, actor=actor)
                elif data["action"] == "status":
                    do_change_case_status(case, status=data["status"], actor=actor)
                elif data["action"] == "decline":
                    do_decline_case(case, reason=data["reason"], statement=data["statement"], actor=actor)
                elif data["action"] == "block":
                    for entity in case.entities.exclude(status=Entity.Status.BLOCKED):
                        do_block_entity(
                            entity, category=data["category"], statement=data["statement"], actor=actor, case=case
                        )
        except (ValidationError, PermissionDenied) as exc:
            problems.append(f"{case.reference}: {' '.join(getattr(exc, 'messages', [str(exc)]))}")
    return problems


def _back_query(form: BulkForm) -> str:
    raw = form.data.get("back", "") if hasattr(form, "data") else ""
    # Re-encode: only a query string travels back, never a URL of someone else's choosing.
    return urlencode(parse_qs(raw[:2000]), doseq=True)


@require_POST
@login_required
def queue_bulk(request: AuthenticatedHttpRequest) -> HttpResponse:
    can = require_lead(request)
    form = BulkForm(request.POST)
    back = _back_query(form)
    problems: list[str] = []
    done = 0
    if form.is_valid():
        problems = _bulk_apply(request, form)
        done = len(form.cleaned_data["cases"]) - len(problems)
    if not request.htmx:
        if form.is_valid():
            messages.success(request, _("Applied to %(n)d case(s).") % {"n": done})
            for problem in problems:
                messages.error(request, problem)
        else:
            messages.error(request, _("Bulk action not applied: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect(f"{reverse('moderation:queue')}?{back}" if back else reverse("moderation:queue"))
    context = {"can": can, **_results_context(request, QueryDict(back))}
    context.update({"bulk_done": done if form.is_valid() else None, "bulk_problems": problems})
    if not form.is_valid():
        context["bulk_form"] = form
    return render(request, "moderation/queue_list.html#queue-results", context)
