"""Replies to reporters: template placeholders, rendering as data, queueing and sending.

Placeholders are `{name}` from a fixed set. Rendering is one regex pass over the *template*: a
value is inserted as it is and never scanned again, so a reporter whose display name is
`{case_reference}` or `{% debug %}` gets exactly that text back. No Django template engine is
involved, and a template may not contain Django template syntax at all, so nobody mistakes one for
the other.

Audit granularity: one `do_queue_replies()` call is one moderator action and writes exactly one
`REPLY_QUEUED` entry listing every reply it queued (and every reporter it skipped); an automatic
acknowledgement writes one entry with the system as actor. Delivery state changes (sent, failed,
delivered, bounced) are machine events recorded on the `Reply` row, not in the audit log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from email.utils import make_msgid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext
from django_q.tasks import async_task

from moderation.actions import Actor
from moderation.audit import record
from moderation.models import (
    AuditAction,
    Decision,
    DeclineReason,
    PolicyCategory,
    Reply,
    ReplyTemplate,
)
from reports.actions import do_register_outbound_message_id
from reports.models import Case, Entity, Report, Reporter
from reports.threader import UNKNOWN_SENDER
from reports.tokens import make_case_token, reply_to_address

logger = logging.getLogger(__name__)

PLACEHOLDERS: dict[str, str] = {
    "case_reference": "the case reference, e.g. AD-000123",
    "reporter_name": "the reporter's display name, or their address when they gave none",
    "entity_list": "the entities this reporter named in the case, one per line",
    "decision": "the latest decision on the case (blocked, unblocked, declined, or under review)",
    "category": "the policy category of a block, or the reason of a decline",
}
ACK_PLACEHOLDERS = ("case_reference",)
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]*)\}")
_DJANGO_SYNTAX = re.compile(r"\{[{%#]|[}%#]\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_REFERENCES = 10


def _max_attempts() -> int:
    return int(getattr(settings, "ABUSEDESK_REPLY_MAX_ATTEMPTS", 5))


# --- Templates -----------------------------------------------------------------------------------


def check_reply_template(subject: str, body: str, *, purpose: str = "") -> None:
    """Raise ValidationError naming every unknown placeholder or Django template tag in a template.

    Acknowledgements go out unreviewed to whatever address a mail claimed, so they may use only
    `{case_reference}`: nothing a sender chose (name, links) is echoed (SECURITY rule 5, T10).
    """
    allowed = ACK_PLACEHOLDERS if purpose == ReplyTemplate.Purpose.ACKNOWLEDGEMENT else tuple(PLACEHOLDERS)
    errors: dict[str, list[str]] = {}
    for field, text in (("subject", subject), ("body", body)):
        problems: list[str] = []
        unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in allowed})
        if unknown:
            problems.append(
                "Unknown placeholder(s): {}. Allowed: {}.".format(
                    ", ".join("{" + name + "}" for name in unknown),
                    ", ".join("{" + name + "}" for name in allowed),
                )
            )
        if _DJANGO_SYNTAX.search(text):
            problems.append("Django template syntax is not supported here; use {placeholder}.")
        if problems:
            errors[field] = problems
    if _CONTROL.search(subject):
        errors.setdefault("subject", []).append("The subject must be one line.")
    if errors:
        raise ValidationError(errors)


def render_text(text: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders in one pass; inserted values are data and are never re-scanned."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def template_for_reporter(template: ReplyTemplate, reporter: Reporter) -> ReplyTemplate:
    """The active template of the same name in the reporter's language, else `template` itself."""
    language = (reporter.language or "").lower()
    if not language or language == template.language.lower():
        return template
    return ReplyTemplate.objects.filter(name=template.name, language__iexact=language, active=True).first() or template


@transaction.atomic
def do_save_reply_template(template: ReplyTemplate, *, actor: Actor) -> bool:
    """Validate and save a template (new or changed); an unchanged template records nothing."""
    template.full_clean(exclude=["updated_at"])
    fields = ("name", "purpose", "language", "subject", "body", "active")
    new = {f: getattr(template, f) for f in fields}
    old = None
    if template.pk is not None:
        old = ReplyTemplate.objects.select_for_update().filter(pk=template.pk).values(*fields).first()
        if old == new:
            return False
    template.updated_at = timezone.now()
    template.save()
    changed = {f: old[f] for f in fields if old[f] != new[f]} if old else None
    record(
        AuditAction.TEMPLATE_SAVED,
        actor=actor.user,
        actor_label=actor.label,
        ip=actor.ip,
        data={
            "old": changed,
            "new": {f: new[f] for f in fields if old is None or f in (changed or {})},
            "template": template.pk,
        },
    )
    return True


def _one_line(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()


def placeholder_values(case: Case, reporter: Reporter, *, language: str) -> dict[str, str]:
    """The placeholder values for one reporter; only facts about the case and that reporter's own
    entities, never another reporter's words (SECURITY rule 5)."""
    urls = (
        Entity.objects.filter(reports__case=case, reports__reporter=reporter)
        .order_by("url")
        .values_list("url", flat=True)
        .distinct()
    )
    decision = Decision.objects.filter(case=case).order_by("-created_at", "-id").first()
    with translation.override(language or settings.LANGUAGE_CODE):
        if decision is None:
            decision_text, category = gettext("under review"), ""
        else:
            decision_text = str(
                {
                    Decision.Kind.BLOCK: gettext("blocked"),
                    Decision.Kind.UNBLOCK: gettext("unblocked"),
                    Decision.Kind.DECLINE: gettext("declined"),
                }[Decision.Kind(decision.kind)]
            )
            if decision.kind == Decision.Kind.DECLINE and decision.decline_reason:
                category = str(DeclineReason(decision.decline_reason).label)
            elif decision.category:
                category = str(PolicyCategory(decision.category).label)
            else:
                category = ""
    return {
        "case_reference": case.reference or "",
        "reporter_name": _one_line(reporter.display_name) or reporter.email,
        "entity_list": "\n".join(f"- {url}" for url in urls[:200]),
        "decision": decision_text,
        "category": category,
    }


def render_reply(template: ReplyTemplate, case: Case, reporter: Reporter) -> tuple[str, str]:
    """(subject, body) of `template` for one reporter; the subject carries the signed case token."""
    values = placeholder_values(case, reporter, language=template.language)
    subject = _one_line(render_text(template.subject, {k: _one_line(v) for k, v in values.items()}))
    token = make_case_token(case.reference or "")
    return f"[{token}] {subject}"[:998], render_text(template.body, values)


def render_template_preview(template: ReplyTemplate, case: Case, reporter: Reporter) -> tuple[str, str]:
    """Exactly what `do_queue_replies()` would send this reporter: the template in their language."""
    return render_reply(template_for_reporter(template, reporter), case, reporter)


# --- Queueing ------------------------------------------------------------------------------------


def _is_own_address(address: str) -> bool:
    local, _, domain = settings.ABUSEDESK_ADDRESS.lower().partition("@")
    their_local, _, their_domain = address.lower().partition("@")
    return their_domain == domain and their_local.split("+", 1)[0] == local


def _skip_reason(reporter: Reporter) -> str:
    if reporter.muted:
        return "muted"
    if reporter.email == UNKNOWN_SENDER or "@" not in reporter.email:
        return "unknown sender"
    if _is_own_address(reporter.email):
        return "our own address"
    return ""


def _new_message_id() -> str:
    domain = settings.ABUSEDESK_ADDRESS.rpartition("@")[2] or "abusedesk.localhost"
    return make_msgid(domain=domain).strip("<>")


def _references_for(report: Report | None) -> str:
    if report is None or not report.message_id:
        return ""
    chain = [*report.references.split(), report.message_id]
    return " ".join(f"<{i}>" for i in chain[-MAX_REFERENCES:])


def enqueue_replies(reply_ids: Iterable[int]) -> None:
    for reply_id in reply_ids:
        async_task("moderation.tasks.send_reply", reply_id, task_name=f"reply-{reply_id}", group="replies")


def _create_reply(
    case: Case, reporter: Reporter, *, template: ReplyTemplate, report: Report | None, automatic: bool, actor: Actor
) -> Reply:
    subject, body = render_reply(template, case, reporter)
    message_id = _new_message_id()
    reply = Reply.objects.create(
        case=case,
        reporter=reporter,
        in_reply_to_report=report,
        template=template,
        subject=subject,
        body=body,
        message_id=message_id,
        automatic=automatic,
        created_by=actor.user,  # type: ignore[misc]
        created_at=timezone.now(),
    )
    do_register_outbound_message_id(message_id, case=case, reporter=reporter)
    return reply


@transaction.atomic
def do_queue_replies(
    case: Case, *, template: ReplyTemplate, reporters: Iterable[Reporter], actor: Actor
) -> list[Reply]:
    """Queue one reply per reporter of `case`, each in its own thread and language.

    Muted reporters, the unknown sender, our own address and addresses that never reported on this
    case are skipped. One audit entry covers the batch; nothing queued records nothing.
    """
    if not template.active:
        raise ValidationError(f"the template {template} is not active")
    check_reply_template(template.subject, template.body, purpose=template.purpose)
    case = Case.objects.select_for_update().get(pk=case.pk)
    latest: dict[int, Report] = {}
    for report in Report.objects.filter(case=case).exclude(kind=Report.Kind.AUTOMATIC).order_by("received_at", "id"):
        latest[report.reporter_id] = report
    queued: list[Reply] = []
    skipped: dict[str, str] = {}
    seen: set[int] = set()
    for reporter in reporters:
        if reporter.pk in seen:
            continue
        seen.add(reporter.pk)
        reason = _skip_reason(reporter) or ("" if reporter.pk in latest else "not a reporter on this case")
        if reason:
            skipped[str(reporter.pk)] = reason
            continue
        own = template_for_reporter(template, reporter)
        check_reply_template(own.subject, own.body, purpose=own.purpose)
        queued.append(
            _create_reply(case, reporter, template=own, report=latest[reporter.pk], automatic=False, actor=actor)
        )
    if not queued:
        return []
    record(
        AuditAction.REPLY_QUEUED,
        actor=actor.user,
        actor_label=actor.label,
        ip=actor.ip,
        case=case,
        data={
            "old": None,
            "new": {
                "template": template.name,
                "replies": [
                    {"reply": str(r.public_id), "reporter": r.reporter_id, "language": r.template.language}  # type: ignore[union-attr]
                    for r in queued
                ],
            },
            "skipped": skipped,
        },
    )
    ids = [r.pk for r in queued]
    transaction.on_commit(lambda: enqueue_replies(ids))
    return queued


# --- Acknowledgement of receipt ------------------------------------------------------------------


def _ack_template(language: str) -> ReplyTemplate | None:
    candidates = ReplyTemplate.objects.filter(purpose=ReplyTemplate.Purpose.ACKNOWLEDGEMENT, active=True)
    for code in (language, language.split("-")[0], settings.LANGUAGE_CODE, "en"):
        found = candidates.filter(language__iexact=code).order_by("name").first() if code else None
        if found is not None:
            return found
    return None


def maybe_acknowledge(report: Report) -> Reply | None:
    """Queue an automatic acknowledgement of a new report, when enabled and allowed (RFC 3834).

    Never for automatic mail, follow-ups, quarantined mail, muted or unknown senders or our own
    address; at most one per reporter per ABUSEDESK_ACK_PERIOD_HOURS; never quotes the report.
    """
    # Checked before the transaction: intake calls this for every new report, and an empty
    # transaction still costs two round trips.
    if not getattr(settings, "ABUSEDESK_ACKNOWLEDGE", False):
        return None
    return _acknowledge(report)


@transaction.atomic
def _acknowledge(report: Report) -> Reply | None:
    report = Report.objects.select_related("case").get(pk=report.pk)
    if report.kind != Report.Kind.REPORT or report.case is None or report.parse_error or report.case.parse_error:
        return None
    # Locking the reporter serialises concurrent acknowledgements to the same address.
    reporter = Reporter.objects.select_for_update().get(pk=report.reporter_id)
    if _skip_reason(reporter):
        return None
    since = timezone.now() - timedelta(hours=int(getattr(settings, "ABUSEDESK_ACK_PERIOD_HOURS", 24)))
    if Reply.objects.filter(reporter=reporter, automatic=True, created_at__gte=since).exists():
        return None
    template = _ack_template(report.language or reporter.language)
    if template is None:
        return None
    check_reply_template(template.subject, template.body, purpose=template.purpose)
    system = Actor(user=None, label="system")
    reply = _create_reply(report.case, reporter, template=template, report=report, automatic=True, actor=system)
    record(
        AuditAction.REPLY_QUEUED,
        actor=None,
        actor_label=system.label,
        case=report.case,
        report=report,
        data={
            "old": None,
            "new": {
                "template": template.name,
                "replies": [{"reply": str(reply.public_id), "reporter": reporter.pk, "language": template.language}],
            },
            "automatic": True,
        },
    )
    transaction.on_commit(lambda: enqueue_replies([reply.pk]))
    return reply


def acknowledge_new_report(sender: object, report: Report, **kwargs: object) -> None:
    """Receiver of `reports.signals.report_created`, connected in ModerationConfig.ready()."""
    maybe_acknowledge(report)


# --- Sending -------------------------------------------------------------------------------------


def build_email(reply: Reply) -> EmailMessage:
    """The outbound message of a reply: threaded, with the signed Reply-To and loop markers."""
    reference = reply.case.reference or ""
    headers = {
        "Message-ID": f"<{reply.message_id}>",
        "X-Loop": settings.ABUSEDESK_LOOP_MARKER,
        "X-Auto-Response-Suppress": "All",
    }
    report = reply.in_reply_to_report
    if report is not None and report.message_id:
        headers["In-Reply-To"] = f"<{report.message_id}>"
        headers["References"] = _references_for(report)
    if reply.automatic:
        # RFC 3834 section 5: automatic responses say so; replies a moderator triggered carry none.
        headers["Auto-Submitted"] = "auto-replied"
    return EmailMessage(
        subject=reply.subject,
        body=reply.body,
        from_email=f"{settings.ABUSEDESK_NAME} <{settings.ABUSEDESK_ADDRESS}>",
        to=[reply.reporter.email],
        reply_to=[reply_to_address(reference)],
        headers=headers,
    )


@transaction.atomic
def do_claim_reply(reply_id: int) -> Reply | None:
    """Count a send attempt; None when the reply is no longer queued or is out of attempts."""
    reply = Reply.objects.select_for_update().filter(pk=reply_id).first()
    if reply is None or reply.state != Reply.State.QUEUED:
        return None
    if reply.attempts >= _max_attempts():
        reply.state = Reply.State.FAILED
        reply.save(update_fields=["state"])
        return None
    reply.attempts = F("attempts") + 1
    reply.save(update_fields=["attempts"])
    return Reply.objects.select_related("case", "reporter", "in_reply_to_report").get(pk=reply_id)


@transaction.atomic
def do_mark_reply_sent(reply_id: int, *, esp_message_id: str = "") -> bool:
    reply = Reply.objects.select_for_update().get(pk=reply_id)
    if reply.state != Reply.State.QUEUED:
        return False
    reply.state = Reply.State.SENT
    reply.esp_message_id = esp_message_id[:255]
    reply.sent_at = timezone.now()
    reply.error = ""
    reply.save(update_fields=["state", "esp_message_id", "sent_at", "error"])
    return True


@transaction.atomic
def do_mark_reply_failed(reply_id: int, *, error: str) -> Reply.State:
    """Record a failed attempt; the reply stays queued for a retry until attempts run out."""
    reply = Reply.objects.select_for_update().get(pk=reply_id)
    if reply.state != Reply.State.QUEUED:
        return Reply.State(reply.state)
    reply.error = error[:2000]
    if reply.attempts >= _max_attempts():
        reply.state = Reply.State.FAILED
    reply.save(update_fields=["error", "state"])
    return Reply.State(reply.state)


def send_queued_reply(reply_id: int) -> str:
    """Send one queued reply now; idempotent once it has left the queued state."""
    reply = do_claim_reply(reply_id)
    if reply is None:
        return "skipped"
    message = build_email(reply)
    try:
        message.send()
    except Exception as exc:
        logger.warning("sending reply %s failed: %s", reply_id, exc)
        return do_mark_reply_failed(reply_id, error=f"{type(exc).__name__}: {exc}")
    status = getattr(message, "anymail_status", None)
    esp_id = str(status.message_id) if status is not None and status.message_id is not None else ""
    do_mark_reply_sent(reply_id, esp_message_id=esp_id)
    return Reply.State.SENT


def replies_due_for_retry(now: datetime | None = None) -> list[int]:
    """Queued replies whose last attempt failed long enough ago (back-off 2**attempts minutes)."""
    now = now or timezone.now()
    rows = Reply.objects.filter(state=Reply.State.QUEUED, attempts__gt=0).values_list("pk", "attempts", "created_at")
    return [pk for pk, attempts, created in rows[:1000] if created < now - timedelta(minutes=2**attempts)]


# --- Delivery tracking ---------------------------------------------------------------------------

_FINAL = {Reply.State.BOUNCED}
_ORDER = {
    Reply.State.QUEUED: 0,
    Reply.State.FAILED: 0,
    Reply.State.SENT: 1,
    Reply.State.DELIVERED: 2,
    Reply.State.BOUNCED: 3,
}


@transaction.atomic
def do_record_reply_delivery(esp_message_id: str, *, state: Reply.State, detail: str = "") -> int:
    """Apply an ESP delivered/bounced event to the replies with that ESP id; returns how many changed.

    A bounce may follow a delivery (asynchronous bounces), but a delivery never undoes a bounce.
    """
    if state not in (Reply.State.DELIVERED, Reply.State.BOUNCED) or not esp_message_id:
        raise ValueError(f"not a delivery state: {state}")
    changed = 0
    for reply in Reply.objects.select_for_update().filter(esp_message_id=esp_message_id[:255]):
        if reply.state in _FINAL or _ORDER[Reply.State(reply.state)] >= _ORDER[state]:
            continue
        reply.state = state
        fields = ["state"]
        if state == Reply.State.BOUNCED:
            reply.error = detail[:2000]
            fields.append("error")
        reply.save(update_fields=fields)
        changed += 1
    return changed
