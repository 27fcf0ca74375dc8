"""The entity page: every case and report naming an entity, and its block/unblock history."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from moderation.views import AuthenticatedHttpRequest, require_viewer
from reports import queries
from reports.models import Entity

REPORTS_PER_PAGE = 100


@require_GET
@login_required
def entity_detail(request: AuthenticatedHttpRequest, entity_id: str) -> HttpResponse:
    can = require_viewer(request)
    entity = get_object_or_404(Entity, public_id=entity_id)
    context = {
        "can": can,
        "entity": entity,
        "cases": queries.entity_cases(entity),
        "reports": Paginator(queries.entity_reports(entity), REPORTS_PER_PAGE).get_page(request.GET.get("reports")),
        "decisions": entity.decisions.select_related("actor", "case"),
    }
    if request.htmx and request.GET.get("reports"):
        return render(request, "moderation/entity_detail.html#entity-reports", context)
    return render(request, "moderation/entity_detail.html", context)
