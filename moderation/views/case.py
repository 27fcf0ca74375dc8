"""The case page and every write on it. Each write view: fetch with a permission check, validate a
form, call one action, respond (the fragment for htmx, a redirect otherwise).

The page is a set of fragments (`{% partialdef %}` in the template), each with its own context
builder in FRAGMENTS that loads only what that fragment shows. A GET with `?partial=<name>`
renders one of them (the page's htmx refreshes); a write renders the fragment its form lives in and
names what else changed in `HX-Trigger`, so that only the fragments showing that refresh.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from moderation import actions
from moderation.actions import Actor
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
from moderation.known_content import queries as known_content
from moderation.models import AuditEntry, Decision, ReplyTemplate
from moderation.replies.outbound import do_queue_replies
from moderation.replies.templates import render_template_preview
from moderation.views import (
    Abilities,
    AuthenticatedHttpRequest,
    actor_of,
    require_lead,
    require_moderator,
    require_viewer,
)
from reports import queries
from reports.models import Attachment, Case, Entity, Report, Reporter

TEMPLATE = "moderation/case_detail.html"
REPORTS_PER_PAGE = 100
AUDIT_TRAIL_LENGTH = 100
THUMBNAIL_SIZE = (640, 640)
# Decoding happens in the web request, so the image's size bounds what a sender can make a
# moderator's request cost: 25 MP is about 75 MB and a tenth of a second, and covers phone photos
# and 4K screenshots. JPEGs are measured after draft mode, which decodes them at 1/2 to 1/8 scale.
THUMBNAIL_MAX_PIXELS = 25_000_000
THUMBNAIL_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}


@dataclass(frozen=True, slots=True)
class _Page:
    """The case as one request renders it, and the form it submitted when that form is shown again
    (invalid, with its errors and typed text): `submitted_as` names the form in the context and
    `submitted_for` is the pk of the entity or report it was about."""

    request: AuthenticatedHttpRequest
    case: Case
    can: Abilities
    submitted: CaseVersionForm | None = None
    submitted_as: str = ""
    submitted_for: int | None = None

    @property
    def version(self) -> str:
        return self.case.updated_at.isoformat()

    def resubmits(self, name: str, about: Entity | Report | None = None) -> bool:
        about_pk = about.pk if about is not None else None
        return self.submitted is not None and (self.submitted_as, self.submitted_for) == (name, about_pk)

    def form(
        self, name: str, form_class: type[CaseVersionForm], *, about: Entity | Report | None = None, **kwargs: Any
    ) -> CaseVersionForm:
        """The submitted form if it is the one asked for, else a fresh one carrying the version."""
        if self.submitted is not None and self.resubmits(name, about):
            return self.submitted
        initial = {"version": self.version, **kwargs.pop("initial", {})}
        return form_class(auto_id=auto_id(name, about), initial=initial, **kwargs)

    def offer(
        self,
        name: str,
        form_class: type[CaseVersionForm],
        offered: bool,
        *,
        about: Entity | Report | None = None,
        **kwargs: Any,
    ) -> CaseVersionForm | None:
        """`form()` where the page offers it; None elsewhere, except for the submitted form coming
        back with its errors (the action refused what the page no longer offers): it is shown, so
        that its errors are not lost."""
        return self.form(name, form_class, about=about, **kwargs) if offered or self.resubmits(name, about) else None


def auto_id(name: str, about: Entity | Report | None = None) -> str:
    """Field ids of one form, unique on the page however many entities and reports it shows:
    "block_form" about an entity gives "block-<entity uuid>-statement"."""
    stem = name.removesuffix("_form").replace("_", "-")
    return f"{stem}-{about.public_id}-%s" if about is not None else f"{stem}-%s"


@dataclass(frozen=True, slots=True)
class EntityRow:
    """One entity in the entities panel, with the forms it offers this user (None: not offered)."""

    entity: Entity
    block_form: CaseVersionForm | None
    unblock_form: CaseVersionForm | None
    split_form: CaseVersionForm | None


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One report in the timeline, with its move form when this user may move it."""

    report: Report
    move_form: CaseVersionForm | None


# One context builder per fragment: each loads only what its fragment renders.


def _common(page: _Page) -> dict[str, Any]:
    return {"case": page.case, "can": page.can, "version": page.version}


def _header_context(page: _Page) -> dict[str, Any]:
    context = _common(page)
    if page.can.moderate:
        case = page.case
        assignee = case.assignee.get_username() if case.assignee else None
        context.update(
            assign_form=page.form("assign_form", AssignForm, initial={"assignee": assignee}),
            status_form=page.form("status_form", StatusForm, initial={"status": case.status}),
            priority_form=page.form("priority_form", PriorityForm, initial={"priority": case.priority}),
            category_form=page.form("category_form", CategoryForm, initial={"category": case.category}),
        )
    return context


def _last_blocker() -> Subquery:
    """Who made an entity's latest block: only they (or a lead) may lift it."""
    blocks = Decision.objects.filter(entity=OuterRef("pk"), kind=Decision.Kind.BLOCK)
    return Subquery(blocks.order_by("-created_at", "-id").values("actor_id")[:1])


def _entities_context(page: _Page) -> dict[str, Any]:
    can, user_id = page.can, page.request.user.pk
    entities = list(queries.case_entities(page.case).annotate(last_blocker_id=_last_blocker()))
    rows = []
    for entity in entities:
        blockable = entity.status == Entity.Status.ACTIVE and entity.kind != Entity.Kind.PRIVATE_CHAT
        unblockable = entity.status == Entity.Status.BLOCKED and (can.lead or entity.last_blocker_id == user_id)
        category = page.case.category or None
        rows.append(
            EntityRow(
                entity=entity,
                block_form=page.offer(
                    "block_form", BlockForm, can.moderate and blockable, about=entity, initial={"category": category}
                ),
                unblock_form=page.offer("unblock_form", UnblockForm, can.moderate and unblockable, about=entity),
                split_form=page.offer("split_form", SplitForm, can.moderate and len(entities) > 1, about=entity),
            )
        )
    return {**_common(page), "entity_rows": rows}


def _timeline_context(page: _Page) -> dict[str, Any]:
    reports = Paginator(queries.case_reports(page.case), REPORTS_PER_PAGE).get_page(page.request.GET.get("reports"))
    rows = [
        ReportRow(report, page.offer("move_form", MoveReportForm, page.can.moderate, about=report))
        for report in reports
    ]
    return {**_common(page), "reports": reports, "report_rows": rows, "thumbnail_types": THUMBNAIL_TYPES}


def _decision_context(page: _Page) -> dict[str, Any]:
    case, can = page.case, page.can
    return {
        **_common(page),
        "decisions": case.decisions.select_related("actor", "entity"),
        "decline_form": page.offer("decline_form", DeclineForm, can.moderate and case.status != Case.Status.DECLINED),
        "merge_form": page.offer("merge_form", MergeForm, can.lead and case.merged_into_id is None),
    }


def _reply_context(page: _Page) -> dict[str, Any]:
    return {
        **_common(page),
        "reply_form": page.form("reply_form", ReplyForm, case=page.case),
        "has_templates": ReplyTemplate.objects.filter(active=True).exists(),
    }


def _notes_context(page: _Page) -> dict[str, Any]:
    return {
        **_common(page),
        "notes": page.case.notes.select_related("author"),
        "note_form": page.offer("note_form", NoteForm, page.can.moderate),
    }


def _audit_context(page: _Page) -> dict[str, Any]:
    entries = page.case.audit_entries.select_related("entity").order_by("-id")[:AUDIT_TRAIL_LENGTH]
    return {**_common(page), "audit": entries}


def _known_content_context(page: _Page) -> dict[str, Any]:
    return {**_common(page), "known": known_content.panel(page.case, lead=page.can.lead)}


FRAGMENTS: dict[str, Callable[[_Page], dict[str, Any]]] = {
    "case-header": _header_context,
    "entities-panel": _entities_context,
    "known-content": _known_content_context,
    "timeline": _timeline_context,
    "decision-panel": _decision_context,
    "reply-composer": _reply_context,
    "notes-panel": _notes_context,
    "audit-trail": _audit_context,
}


def _page_context(page: _Page) -> dict[str, Any]:
    """The whole page: every fragment's context."""
    context: dict[str, Any] = {}
    for build in FRAGMENTS.values():
        context.update(build(page))
    return context


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


@require_GET
@login_required
def case_detail(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=False)
    page = _Page(request, case, can)
    partial = request.GET.get("partial", "")
    if request.htmx and partial in FRAGMENTS:
        return render(request, f"{TEMPLATE}#{partial}", FRAGMENTS[partial](page))
    return render(request, TEMPLATE, _page_context(page))


def _respond(
    request: AuthenticatedHttpRequest,
    case: Case,
    can: Abilities,
    form: CaseVersionForm,
    *,
    form_name: str,
    about: Entity | Report | None = None,
    partial: str,
    changed: bool,
    events: tuple[str, ...] = ("audit-changed",),
    **extra: Any,
) -> HttpResponse:
    """Re-render the form's fragment for htmx (200 also for an invalid form), else redirect back to
    the page (or, for an invalid form, render the whole page with it). `events` name the other
    fragments' data that a change altered; they go out only when something changed."""
    valid = form.is_valid()
    page = _Page(request, case, can)
    if not valid:
        page = replace(page, submitted=form, submitted_as=form_name, submitted_for=about.pk if about else None)
    conflict = _changes_since(request, case, form.cleaned_data.get("version")) if valid else []
    if not request.htmx:
        if not valid:
            return render(request, TEMPLATE, {**_page_context(page), **extra})
        for entry in conflict:
            messages.warning(request, _("Changed meanwhile: %(entry)s") % {"entry": entry})
        return redirect("moderation:case-detail", reference=case.reference)
    if changed:
        page = replace(page, case=Case.objects.select_related("assignee", "merged_into").get(pk=case.pk))
    response = render(request, f"{TEMPLATE}#{partial}", {**FRAGMENTS[partial](page), "conflict": conflict, **extra})
    if changed:
        for event in events:
            trigger_client_event(response, event)
    return response


def _header_write(
    request: AuthenticatedHttpRequest,
    reference: str,
    form_class: type[CaseVersionForm],
    form_name: str,
    change: Callable[[Case, dict[str, Any], Actor], bool],
) -> HttpResponse:
    """One inline edit of the header: `change` calls its action and says whether anything changed."""
    case, can = _get_case_for_moderator(request, reference, write=True)
    form = form_class(request.POST, auto_id=auto_id(form_name))
    changed = False
    if form.is_valid():
        try:
            changed = change(case, form.cleaned_data, actor_of(request))
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, case, can, form, form_name=form_name, partial="case-header", changed=changed)


@require_POST
@login_required
def case_assign(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _header_write(
        request,
        reference,
        AssignForm,
        "assign_form",
        lambda case, data, actor: actions.do_assign_case(case, assignee=data["assignee"], actor=actor),
    )


@require_POST
@login_required
def case_status(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _header_write(
        request,
        reference,
        StatusForm,
        "status_form",
        lambda case, data, actor: actions.do_change_case_status(case, status=data["status"], actor=actor),
    )


@require_POST
@login_required
def case_priority(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _header_write(
        request,
        reference,
        PriorityForm,
        "priority_form",
        lambda case, data, actor: actions.do_change_case_priority(case, priority=data["priority"], actor=actor),
    )


@require_POST
@login_required
def case_category(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    return _header_write(
        request,
        reference,
        CategoryForm,
        "category_form",
        lambda case, data, actor: actions.do_change_case_category(case, category=data["category"], actor=actor),
    )


@require_POST
@login_required
def entity_block(request: AuthenticatedHttpRequest, reference: str, entity_id: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    entity = get_object_or_404(case.entities, public_id=entity_id)
    form = BlockForm(request.POST, auto_id=auto_id("block_form", entity))
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
        form,
        form_name="block_form",
        about=entity,
        partial="entities-panel",
        changed=changed,
        # The case is actioned, the decision list grows.
        events=("case-changed", "decisions-changed", "audit-changed"),
    )


@require_POST
@login_required
def entity_unblock(request: AuthenticatedHttpRequest, reference: str, entity_id: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    entity = get_object_or_404(case.entities, public_id=entity_id)
    actor = actor_of(request)
    actions.check_unblock_entity(entity, actor=actor)  # PermissionDenied -> 403
    form = UnblockForm(request.POST, auto_id=auto_id("unblock_form", entity))
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
        form,
        form_name="unblock_form",
        about=entity,
        partial="entities-panel",
        changed=changed,
        events=("decisions-changed", "audit-changed"),
    )


@require_POST
@login_required
def entity_split(request: AuthenticatedHttpRequest, reference: str, entity_id: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    entity = get_object_or_404(case.entities, public_id=entity_id)
    form = SplitForm(request.POST, auto_id=auto_id("split_form", entity))
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
        form,
        form_name="split_form",
        about=entity,
        partial="entities-panel",
        changed=new_case is not None,
        # The reports naming only this entity went with it: fewer reports in the header and timeline.
        events=("case-changed", "reports-changed", "audit-changed"),
        split_into=new_case,
    )


@require_POST
@login_required
def case_decline(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    form = DeclineForm(request.POST, auto_id=auto_id("decline_form"))
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
    # The decision panel re-renders with the new decision; the header shows the new status.
    return _respond(
        request,
        case,
        can,
        form,
        form_name="decline_form",
        partial="decision-panel",
        changed=changed,
        events=("case-changed", "audit-changed"),
    )


@require_POST
@login_required
def case_note(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    form = NoteForm(request.POST, auto_id=auto_id("note_form"))
    changed = False
    if form.is_valid():
        actions.do_add_note(case, text=form.cleaned_data["text"], actor=actor_of(request))
        changed = True
    return _respond(request, case, can, form, form_name="note_form", partial="notes-panel", changed=changed)


@require_POST
@login_required
def case_merge(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    require_lead(request)
    form = MergeForm(request.POST, auto_id=auto_id("merge_form"))
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
    return _respond(request, case, can, form, form_name="merge_form", partial="decision-panel", changed=False)


@require_POST
@login_required
def report_move(request: AuthenticatedHttpRequest, reference: str, report_id: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    report = get_object_or_404(Report, case=case, public_id=report_id)
    form = MoveReportForm(request.POST, auto_id=auto_id("move_form", report))
    changed = False
    if form.is_valid():
        changed = actions.do_move_report(report, to_case=form.cleaned_data["to"], actor=actor_of(request))
    return _respond(
        request,
        case,
        can,
        form,
        form_name="move_form",
        about=report,
        partial="timeline",
        changed=changed,
        # Fewer reports in the header; the report's entities are now also in the target case.
        events=("case-changed", "entities-changed", "audit-changed"),
    )


@require_GET
@login_required
def report_raw(request: AuthenticatedHttpRequest, reference: str, report_id: str) -> FileResponse:
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
def attachment_download(request: AuthenticatedHttpRequest, attachment_id: str) -> FileResponse:
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


def _chosen_reporters(case: Case, form: ReplyForm) -> list[Reporter]:
    reporters = Reporter.objects.filter(reports__case=case).distinct().order_by("email")
    choice = form.cleaned_data["reporter"]
    return list(reporters if choice == "all" else reporters.filter(pk=int(choice)))


@require_GET
@login_required
def reply_preview(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=False)
    form = ReplyForm(request.GET, case=case, auto_id=auto_id("reply_form"))
    preview = None
    if form.is_valid():
        reporters = _chosen_reporters(case, form)
        if reporters:
            preview = render_template_preview(form.cleaned_data["template"], case, reporters[0])
    # The composer keeps what was chosen, valid or not.
    page = _Page(request, case, can, submitted=form, submitted_as="reply_form")
    if request.htmx:
        return render(request, f"{TEMPLATE}#reply-composer", {**_reply_context(page), "preview": preview})
    return render(request, TEMPLATE, {**_page_context(page), "preview": preview})


@require_POST
@login_required
def reply_send(request: AuthenticatedHttpRequest, reference: str) -> HttpResponse:
    case, can = _get_case_for_moderator(request, reference, write=True)
    form = ReplyForm(request.POST, case=case, auto_id=auto_id("reply_form"))
    queued: list[Any] = []
    if form.is_valid():
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
        form,
        form_name="reply_form",
        partial="reply-composer",
        changed=bool(queued),
        queued=len(queued),
    )
