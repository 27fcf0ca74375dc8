"""django-q2 tasks of moderation: thin wrappers that fetch by id and call one action."""

from __future__ import annotations

from moderation.replies import enqueue_replies, replies_due_for_retry, send_queued_reply


def send_reply(reply_id: int) -> str:
    """Send one queued reply. Safe to run twice: a reply that left the queued state is skipped."""
    return send_queued_reply(reply_id)


def retry_replies() -> int:
    """Re-queue replies whose last attempt failed (run on a schedule); gives up after N attempts."""
    due = replies_due_for_retry()
    enqueue_replies(due)
    return len(due)
