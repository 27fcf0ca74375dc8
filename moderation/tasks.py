"""django-q2 tasks of moderation: thin wrappers that fetch by id and call one action."""

from __future__ import annotations

from moderation.audit.anchors import write_current_anchor
from moderation.replies.outbound import enqueue_replies, replies_due_for_retry, send_queued_reply


def send_reply(reply_id: int) -> str:
    """Send one queued reply. Safe to run twice: a reply that left the queued state is skipped."""
    return send_queued_reply(reply_id)


def retry_replies() -> int:
    """Re-queue replies whose last attempt failed (run on a schedule); gives up after N attempts."""
    due = replies_due_for_retry()
    enqueue_replies(due)
    return len(due)


# Enforcement webhooks. Imported here rather than at the top to keep this block self-contained.
def deliver_webhooks(endpoint_id: int) -> int:
    """Send one endpoint's due events in sequence order. Safe to run twice: the head is leased."""
    from moderation.integrations.enforcement import deliver_due

    return deliver_due(endpoint_id)


def retry_webhooks() -> int:
    """Every minute: owe endpoints any change no signal reached, and enqueue those whose next event is due."""
    from moderation.integrations.enforcement import due_endpoints, enqueue_delivery

    due = due_endpoints()
    for endpoint_id in due:
        enqueue_delivery(endpoint_id)
    return len(due)


def anchor_audit() -> int:
    """Every 5 minutes: write the audit log's count and head hash to each configured place outside
    the database; raises (a failed task) when any place could not be written."""
    return write_current_anchor()


def match_known_content(report_id: int) -> int:
    """Match a new report's attachments against the hash banks; the number of new matches."""
    from moderation.known_content.matching import match_report

    return match_report(report_id)


def match_hashed_attachments(attachment_ids: list[int]) -> int:
    """Match attachments that `manage.py hash_attachments` hashed after they were stored."""
    from moderation.known_content.matching import match_attachments

    return match_attachments(attachment_ids)


def rematch_known_content(bank_id: int) -> int:
    """After a bank's hashes changed: match every open case's attachments against that bank."""
    from moderation.known_content.matching import rematch_open_cases

    return rematch_open_cases(bank_id)


def refresh_transparency() -> int:
    """Every 5 minutes: recompute the transparency figures of the days changed since the last run;
    returns how many days it recomputed."""
    from moderation.transparency.rollup import refresh

    return refresh().days
