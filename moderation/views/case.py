"""The case page and every write on it. Each write view: fetch with a permission check, validate a
form, call one action, respond (the fragment for htmx, a redirect otherwise)."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from moderation import actions
from moderation.forms import (
    AssignForm,
    BlockForm,
    CaseVersionForm,
    CategoryForm,
    DeclineForm,
    MergeForm,
    MoveReportForm,
    NoteForm,
    PriorityForm,
    ReplyForm,
    SplitForm,
    StatusForm,
    UnblockForm,
)
from moderation.models import AuditEntry, Decision, ReplyTemplate
from moderation.views import (
    Abilities,
    AuthenticatedHttpRequest,
    actor_of,
    require_lead,
    require_moderator,
    require_viewer,
)
from reports import queries
from reports.models import Attachment, Case, Report

TEMPLATE = "moderation/case_detail.html"
REPORTS_PER_PAGE = 100
# Fragments a page may reload on its own when another fragment announces a change.
REFRESHABLE = {"case-header", "entities-panel", "audit-trail", "notes-panel", "decision-panel"}
THUMBNAIL_SIZE = (640, 640)
# Decoding happens in the web request, so the image's size bounds what a sender can make a
# moderator's request cost: 25 MP is about 75 MB and a tenth of a second, and covers phone photos
# and 4K screenshots. JPEGs are measured after draft mode, which decodes them at 1/2 to 1/8 scale.
THUMBNAIL_MAX_PIXELS = 25_000_000
THUMBNAIL_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}


def _get_case_for_moderator(
    request: AuthenticatedHttpRequest, reference: str, *, write: bool
) -> tuple[Case, Abilities]:
    can = require_moderator(request) if write else require_viewer(request)
    return get_object_or_404(Case.objects.select_related("assignee", "merged_into"), reference=reference), can


def _changes_since(request: AuthenticatedHttpRequest, case: Case, version: datetime | None) -> list[AuditEntry]:
    """What others recorded on this case after the moderator's page was rendered."""
    if version is None or case.updated_at <= version:
        return []
    others = AuditEntry.objects.filter(case=case, created_at__gt=version).exclude(actor=request.user)
    return list(others.order_by("id")[:20])


def _case_context(request: AuthenticatedHttpRequest, case: Case, can: Abilities, **extra: Any) -> dict[str, Any]:
    """Everything the page shows, as lazy querysets, so a fragment only pays for what it renders."""
    entities = list(queries.case_entities(case).prefetch_related("decisions"))
    for entity in entities:
        blocks = [d for d in entity.decisions.all() if d.kind == Decision.Kind.BLOCK]
        last_block = max(blocks, key=lambda d: (d.created_at, d.pk), default=None)
        entity.can_unblock = can.lead or (  # type: ignore[attr-defined]
            can.moderate and last_block is not None and last_block.actor_id == request.user.pk
        )
    reports = Paginator(queries.case_reports(case), REPORTS_PER_PAGE).get_page(request.GET.get("reports"))
    context: dict[str, Any] = {
        "case": case,
        "can": can,
        "version": case.updated_at.isoformat(),
        "entities": entities,
        "reports": reports,
        "notes": case.notes.select_related("author"),
        "decisions": case.decisions.select_related("actor", "entity"),
        "audit": case.audit_entries.select_related("entity", "report").order_by("-id")[:100],
        "assign_form": AssignForm(initial={"assignee": case.assignee.username if case.assignee else None}),
        "status_form": StatusForm(initial={"status": case.status}),
        "priority_form": PriorityForm(initial={"priority": case.priority}),
        "category_form": CategoryForm(initial={"category": case.category}),
        "block_form": BlockForm(initial={"category": case.category or None}),
        "unblock_form": UnblockForm(),
        "decline_form": DeclineForm(),
        "note_form": NoteForm(),
        "merge_form": MergeForm(),
        "move_form": MoveReportForm(),
        "reply_form": ReplyForm(case=case),
        "has_templates": ReplyTemplate.objects.filter(active=True).exists,
        "thumbnail_types": THUMBNAIL_TYPES,
        "split_form": SplitForm(),
    }
    context.update(extra)
    return context


@require_GET
@login_required
def case_detail(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=False)
    context = _case_context(request, case, can)
    partial = request.GET.get("partial", "")
    if request.htmx and partial in REFRESHABLE:
        return render(request, f"{TEMPLATE}#{partial}", context)
    if request.htmx and request.GET.get("reports"):
        return render(request, f"{TEMPLATE}#timeline", context)
    return render(request, TEMPLATE, context)


def _respond(
    request: AuthenticatedHttpRequest,
    case: Case,
    can: Abilities,
    *,
    partial: str,
    form: CaseVersionForm,
    form_name: str,
    changed: bool,
    events: tuple[str, ...] = ("audit-changed",),
    **extra: Any,
) -> HttpResponse:
    """Re-render one fragment for htmx (200 also for an invalid form), else redirect back to the page."""
    conflict = _changes_since(request, case, form.cleaned_data.get("version")) if form.is_valid() else []
    if not request.htmx and form.is_valid():
        for entry in conflict:
            messages.warning(request, _("Changed meanwhile: %(entry)s") % {"entry": entry})
        return redirect("moderation:case-detail", reference=case.reference)
    case.refresh_from_db()
    context = _case_context(request, case, can, conflict=conflict, **{form_name: form} if not form.is_valid() else {})
    context.update(extra)
    response = render(request, f"{TEMPLATE}#{partial}" if request.htmx else TEMPLATE, context)
    if changed:
        for event in events:
            trigger_client_event(response, event)
    return response


def _header_write(
    request: AuthenticatedHttpRequest, reference: str, form_class: type[CaseVersionForm], form_name: str
) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    form = form_class(request.POST)
    changed = False
    if form.is_valid():
        actor, data = actor_of(request), form.cleaned_data
        try:
            if form_class is AssignForm:
                changed = actions.do_assign_case(case, assignee=data["assignee"], actor=actor)
            elif form_class is StatusForm:
                changed = actions.do_change_case_status(case, status=data["status"], actor=actor)
            elif form_class is PriorityForm:
                changed = actions.do_change_case_priority(case, priority=data["priority"], actor=actor)
            else:
                changed = actions.do_change_case_category(case, category=data["category"], actor=actor)
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, case, can, partial="case-header", form=form, form_name=form_name, changed=changed)


@require_POST
@login_required
def case_assign(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _header_write(request, reference, AssignForm, "assign_form")


@require_POST
@login_required
def case_status(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _header_write(request, reference, StatusForm, "status_form")


@require_POST
@login_required
def case_priority(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _header_write(request, reference, PriorityForm, "priority_form")


@require_POST
@login_required
def case_category(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _header_write(request, reference, CategoryForm, "category_form")


@require_POST
@login_required
def entity_block(request: AuthenticatedHttpRequest, reference: str, entity_id: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    entity = get_object_or_404(case.entities, public_id=entity_id)
    form = BlockForm(request.POST)
    changed = False
    if form.is_valid():
        try:
            changed = (
                actions.do_block_entity(
                    entity,
                    category=form.cleaned_data["category"],
                    statement=form.cleaned_data["statement"],
                    actor=actor_of(request),
                    case=case,
                )
                is not None
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(
        request,
        case,
        can,
        partial="entities-panel",
        form=form,
        form_name="block_form",
        changed=changed,
        events=("case-changed", "audit-changed"),
        form_entity=entity.pk,
    )


@require_POST
@login_required
def entity_unblock(request: AuthenticatedHttpRequest, reference: str, entity_id: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    entity = get_object_or_404(case.entities, public_id=entity_id)
    actor = actor_of(request)
    actions.check_unblock_entity(entity, actor=actor)  # PermissionDenied -> 403
    form = UnblockForm(request.POST)
    changed = False
    if form.is_valid():
        try:
            changed = (
                actions.do_unblock_entity(entity, statement=form.cleaned_data["statement"], actor=actor, case=case)
                is not None
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(
        request,
        case,
        can,
        partial="entities-panel",
        form=form,
        form_name="unblock_form",
        changed=changed,
        events=("case-changed", "audit-changed"),
        form_entity=entity.pk,
    )


@require_POST
@login_required
def entity_split(request: AuthenticatedHttpRequest, reference: str, entity_id: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    entity = get_object_or_404(case.entities, public_id=entity_id)
    form = SplitForm(request.POST)
    new_case = None
    if form.is_valid():
        try:
            new_case = actions.do_split_entity(case, entity=entity, actor=actor_of(request))
        except ValidationError as exc:
            form.add_error(None, exc)
    if new_case is not None and not request.htmx:
        messages.success(request, _("%(entity)s now has its own case %(case)s.") % {"entity": entity, "case": new_case})
    return _respond(
        request,
        case,
        can,
        partial="entities-panel",
        form=form,
        form_name="split_form",
        changed=new_case is not None,
        events=("case-changed", "audit-changed"),
        split_into=new_case,
        form_entity=entity.pk,
    )


@require_POST
@login_required
def case_decline(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    form = DeclineForm(request.POST)
    changed = False
    if form.is_valid():
        try:
            changed = (
                actions.do_decline_case(
                    case,
                    reason=form.cleaned_data["reason"],
                    statement=form.cleaned_data["statement"],
                    actor=actor_of(request),
                )
                is not None
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(
        request,
        case,
        can,
        partial="decision-panel",
        form=form,
        form_name="decline_form",
        changed=changed,
        events=("case-changed", "audit-changed"),
    )


@require_POST
@login_required
def case_note(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    form = NoteForm(request.POST)
    changed = False
    if form.is_valid():
        actions.do_add_note(case, text=form.cleaned_data["text"], actor=actor_of(request))
        changed = True
    return _respond(request, case, can, partial="notes-panel", form=form, form_name="note_form", changed=changed)


@require_POST
@login_required
def case_merge(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    require_lead(request)
    form = MergeForm(request.POST)
    if form.is_valid():
        target = form.cleaned_data["into"]
        try:
            actions.do_merge_cases(case, into=target, actor=actor_of(request))
        except ValidationError as exc:
            form.add_error("into", exc)
        else:
            url = reverse("moderation:case-detail", kwargs={"reference": target.reference})
            if request.htmx:
                return HttpResponseClientRedirect(url)
            messages.success(request, _("%(source)s was merged into %(target)s.") % {"source": case, "target": target})
            return redirect(url)
    return _respond(request, case, can, partial="decision-panel", form=form, form_name="merge_form", changed=False)


@require_POST
@login_required
def report_move(request: AuthenticatedHttpRequest, reference: str, report_id: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    report = get_object_or_404(Report, case=case, public_id=report_id)
    form = MoveReportForm(request.POST)
    changed = False
    if form.is_valid():
        changed = actions.do_move_report(report, to_case=form.cleaned_data["to"], actor=actor_of(request))
    return _respond(
        request,
        case,
        can,
        partial="timeline",
        form=form,
        form_name="move_form",
        changed=changed,
        events=("case-changed", "audit-changed"),
        form_report=report.pk,
    )


@require_GET
@login_required
def report_raw(request: AuthenticatedHttpRequest, reference: str, report_id: str) -> HttpResponse:
    """The raw message as received, for leads only, always as a download."""
    case, _can = _get_case_for_moderator(request, reference, write=False)
    require_lead(request)
    report = get_object_or_404(Report.objects.select_related("inbound"), case=case, public_id=report_id)
    response = FileResponse(
        report.inbound.raw.open("rb"),
        as_attachment=True,
        filename=f"{case.reference}-{report.public_id}.eml",
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _get_attachment_for_viewer(request: AuthenticatedHttpRequest, attachment_id: str) -> Attachment:
    require_viewer(request)
    return get_object_or_404(Attachment.objects.select_related("report"), public_id=attachment_id)


@require_GET
@login_required
def attachment_download(request: AuthenticatedHttpRequest, attachment_id: str) -> HttpResponse:
    """Inbound bytes never render on our origin: a download, whatever the file claims to be."""
    attachment = _get_attachment_for_viewer(request, attachment_id)
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.filename or "attachment.bin",
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@login_required
def attachment_thumbnail(request: AuthenticatedHttpRequest, attachment_id: str) -> HttpResponse:
    """A re-encoded JPEG of a raster image: the browser never sees the sender's bytes."""
    from PIL import Image

    attachment = _get_attachment_for_viewer(request, attachment_id)
    if attachment.content_type not in THUMBNAIL_TYPES:
        raise Http404("no thumbnail for this type")
    try:
        with attachment.file.open("rb") as handle, Image.open(handle) as image:
            image.draft("RGB", THUMBNAIL_SIZE)
            if image.width * image.height > THUMBNAIL_MAX_PIXELS:
                raise Http404("too large to preview; download it instead")
            image.thumbnail(THUMBNAIL_SIZE)
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=80)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise Http404("not a readable image") from None
    response = HttpResponse(out.getvalue(), content_type="image/jpeg")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@login_required
def reply_preview(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=False)
    form = ReplyForm(request.GET, case=case)
    preview = None
    if form.is_valid():
        preview = _preview(case, form)
    context = _case_context(request, case, can, reply_form=form, preview=preview)
    if request.htmx:
        return render(request, f"{TEMPLATE}#reply-composer", context)
    return render(request, TEMPLATE, context)


def _chosen_reporters(case: Case, form: ReplyForm) -> list[Any]:
    from reports.models import Reporter

    reporters = Reporter.objects.filter(reports__case=case).distinct().order_by("email")
    choice = form.cleaned_data["reporter"]
    return list(reporters if choice == "all" else reporters.filter(pk=int(choice)))


def _preview(case: Case, form: ReplyForm) -> tuple[str, str] | None:
    try:
        from moderation.replies.templates import render_template_preview
    except ImportError:
        return None
    reporters = _chosen_reporters(case, form)
    return render_template_preview(form.cleaned_data["template"], case, reporters[0]) if reporters else None


@require_POST
@login_required
def reply_send(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    form = ReplyForm(request.POST, case=case)
    queued: list[Any] = []
    if form.is_valid():
        try:
            from moderation.replies.outbound import do_queue_replies
        except ImportError:
            form.add_error(None, _("Replies are not available yet."))
        else:
            try:
                queued = do_queue_replies(
                    case,
                    template=form.cleaned_data["template"],
                    reporters=_chosen_reporters(case, form),
                    actor=actor_of(request),
                )
            except (ValidationError, PermissionDenied) as exc:
                form.add_error(None, str(exc))
    if queued and not request.htmx:
        messages.success(request, _("%(n)d repl(ies) queued.") % {"n": len(queued)})
    return _respond(
        request,
        case,
        can,
        partial="reply-composer",
        form=form,
        form_name="reply_form",
        changed=bool(queued),
        queued=len(queued),
    )
