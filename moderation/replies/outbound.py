"""Outbound replies: queueing one per reporter, each in its thread and language, and sending them.

Audit granularity: one `do_queue_replies()` call is one moderator action and writes exactly one
`REPLY_QUEUED` entry listing every reply it queued (and every reporter it skipped). Delivery state
changes (sent, failed, delivered, bounced) are machine events recorded on the `Reply` row, not in
the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from email.utils import make_msgid

import idna
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from moderation.actions import Actor
from moderation.audit import record
from moderation.models import (
    AuditAction,
    Reply,
    ReplyTemplate,
)
from moderation.replies.templates import check_reply_template, render_reply, template_for_reporter
from reports.actions import do_register_outbound_message_id
from reports.models import Case, Report, Reporter
from reports.threader import UNKNOWN_SENDER
from reports.tokens import reply_to_address

logger = logging.getLogger(__name__)
MAX_REFERENCES = 10


def _max_attempts() -> int:
    return settings.ABUSEDESK_REPLY_MAX_ATTEMPTS


def _is_own_address(address: str) -> bool:
    local, _, domain = settings.ABUSEDESK_ADDRESS.lower().partition("@")
    their_local, _, their_domain = address.lower().partition("@")
    return their_domain == domain and their_local.split("+", 1)[0] == local


def skip_reason(reporter: Reporter) -> str:
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


def create_reply(
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
        created_by=actor.user,
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
    audited: list[dict[str, str | int]] = []
    skipped: dict[str, str] = {}
    seen: set[int] = set()
    for reporter in reporters:
        if reporter.pk in seen:
            continue
        seen.add(reporter.pk)
        reason = skip_reason(reporter) or ("" if reporter.pk in latest else "not a reporter on this case")
        if reason:
            skipped[str(reporter.pk)] = reason
            continue
        own = template_for_reporter(template, reporter)
        check_reply_template(own.subject, own.body, purpose=own.purpose)
        reply = create_reply(case, reporter, template=own, report=latest[reporter.pk], automatic=False, actor=actor)
        queued.append(reply)
        audited.append({"reply": str(reply.public_id), "reporter": reporter.pk, "language": own.language})
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
                "replies": audited,
            },
            "skipped": skipped,
        },
    )
    ids = [r.pk for r in queued]
    transaction.on_commit(lambda: enqueue_replies(ids))
    return queued


class UndeliverableAddress(ValueError):
    """The reporter's address cannot be put in a mail the desk's mail backends can send."""


def delivery_address(address: str) -> str:
    """`address` as an ASCII addr-spec, with an internationalised domain in IDNA (punycode; IDNA
    2008 with the UTS #46 mapping, as mail clients write it).

    A non-ASCII local part can only travel with SMTPUTF8 on every hop, which Django's mail
    backends do not offer, and no RFC allows an encoded word in an address (what made the
    undeliverable address of issue 11): UndeliverableAddress, as for a domain IDNA refuses.
    """
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise UndeliverableAddress(_("The address %(address)s has no domain.") % {"address": address})
    if "=?" in address:
        # Some senders (Python's email package among them) write an IDN domain as an encoded word.
        # Intake keeps the address as written (decoding it is the Mailsploit trick), so it cannot
        # be answered as it stands.
        raise UndeliverableAddress(
            _("The address %(address)s contains an encoded word (=?...?=), which no mail server delivers.")
            % {"address": address}
        )
    if not local.isascii():
        raise UndeliverableAddress(
            _(
                "The address %(address)s has non-ASCII characters before the @, which needs SMTPUTF8; "
                "the desk's mail backend does not offer it. Reply to this reporter another way."
            )
            % {"address": address}
        )
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise UndeliverableAddress(
                _("The domain of %(address)s is not a valid internationalised domain name: %(error)s")
                % {"address": address, "error": exc}
            ) from None
    return f"{local}@{domain}"


def build_email(reply: Reply) -> EmailMessage:
    """The outbound message of a reply: threaded, with the signed Reply-To and loop markers.

    Raises UndeliverableAddress when the reporter's address cannot be written in ASCII."""
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
        to=[delivery_address(reply.reporter.email)],
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
def do_mark_reply_failed(reply_id: int, *, error: str, permanent: bool = False) -> Reply.State:
    """Record a failed attempt; the reply stays queued for a retry until attempts run out, or
    fails at once when retrying cannot help (`permanent`)."""
    reply = Reply.objects.select_for_update().get(pk=reply_id)
    if reply.state != Reply.State.QUEUED:
        return Reply.State(reply.state)
    reply.error = error[:2000]
    if permanent or reply.attempts >= _max_attempts():
        reply.state = Reply.State.FAILED
    reply.save(update_fields=["error", "state"])
    return Reply.State(reply.state)


def send_queued_reply(reply_id: int) -> str:
    """Send one queued reply now; idempotent once it has left the queued state."""
    reply = do_claim_reply(reply_id)
    if reply is None:
        return "skipped"
    try:
        message = build_email(reply)
    except UndeliverableAddress as exc:
        return do_mark_reply_failed(reply_id, error=str(exc), permanent=True)
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
