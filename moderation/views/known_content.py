"""A lead's button on the case page that adds a blocked case's media to a bank; it re-renders the
known-content fragment (moderation/views/case.py builds it for the page)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from moderation.known_content.actions import do_add_case_media_to_bank
from moderation.known_content.forms import AddToBankForm
from moderation.known_content.queries import panel
from moderation.views import AuthenticatedHttpRequest, actor_of, require_lead
from reports.models import Case

TEMPLATE = "moderation/includes/known_content.html"


@require_POST
@login_required
def known_content_add(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    """Add the case's images and videos to a bank (leads only; the case must be blocked)."""
    can = require_lead(request)
    case = get_object_or_404(Case, reference=reference)
    form = AddToBankForm(request.POST)
    added = None
    if form.is_valid():
        try:
            added = do_add_case_media_to_bank(
                case, bank=form.cleaned_data["bank"], label=form.cleaned_data["label"], actor=actor_of(request)
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    if not request.htmx:
        if added is not None:
            messages.success(request, _("%(n)d new hash(es) added to the bank.") % {"n": added})
        else:
            messages.error(request, _("Not added to a bank: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("moderation:case-detail", reference=case.reference)
    known = panel(case, lead=can.lead, form=form if added is None else None)
    context = {"case": case, "can": can, "added": added, "known": known}
    response = render(request, TEMPLATE, context)
    if added:
        trigger_client_event(response, "audit-changed")
    return response
