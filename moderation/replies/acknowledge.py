"""Acknowledgements of receipt: automatic, rate-limited per reporter, never to automatic mail (RFC 3834).

An automatic acknowledgement writes one audit entry with the system as actor.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from moderation.actions import Actor
from moderation.audit import record
from moderation.models import (
    AuditAction,
    Reply,
    ReplyTemplate,
)
from moderation.replies.outbound import create_reply, enqueue_replies, skip_reason
from moderation.replies.templates import check_reply_template
from reports.models import Report, Reporter


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
    if not settings.ABUSEDESK_ACKNOWLEDGE:
        return None
    return _acknowledge(report)


@transaction.atomic
def _acknowledge(report: Report) -> Reply | None:
    report = Report.objects.select_related("case").get(pk=report.pk)
    if report.kind != Report.Kind.REPORT or report.case is None or report.parse_error or report.case.parse_error:
        return None
    # Locking the reporter serialises concurrent acknowledgements to the same address.
    reporter = Reporter.objects.select_for_update().get(pk=report.reporter_id)
    if skip_reason(reporter):
        return None
    since = timezone.now() - timedelta(hours=settings.ABUSEDESK_ACK_PERIOD_HOURS)
    if Reply.objects.filter(reporter=reporter, automatic=True, created_at__gte=since).exists():
        return None
    template = _ack_template(report.language or reporter.language)
    if template is None:
        return None
    check_reply_template(template.subject, template.body, purpose=template.purpose)
    system = Actor(user=None, label="system")
    reply = create_reply(report.case, reporter, template=template, report=report, automatic=True, actor=system)
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
