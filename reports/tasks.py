"""django-q2 tasks of intake: thin wrappers that fetch by id and call one action."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_q.tasks import async_task

from reports.actions import do_process_inbound, do_reset_inbound
from reports.models import InboundMessage

# A pending message older than this was probably never queued (broker down at store time).
STALE_PENDING = timedelta(minutes=2)


def enqueue_processing(inbound_id: int) -> None:
    async_task("reports.tasks.process_inbound", inbound_id, task_name=f"inbound-{inbound_id}", group="inbound")


def process_inbound(inbound_id: int) -> str:
    """The q-cluster entry point; safe to run twice for the same message."""
    return do_process_inbound(inbound_id).state


def sweep_inbound() -> int:
    """Re-queue stale pending messages and retry failed ones with exponential back-off.

    Runs on a schedule; a message that failed ABUSEDESK_PROCESS_MAX_ATTEMPTS times stays failed
    until someone runs `manage.py reprocess`.
    """
    now = timezone.now()
    queued = 0
    for inbound_id in InboundMessage.objects.filter(
        state=InboundMessage.State.PENDING, received_at__lt=now - STALE_PENDING
    ).values_list("pk", flat=True)[:1000]:
        enqueue_processing(inbound_id)
        queued += 1
    failed = InboundMessage.objects.filter(
        state=InboundMessage.State.FAILED, attempts__lt=settings.ABUSEDESK_PROCESS_MAX_ATTEMPTS
    ).values_list("pk", "attempts", "processed_at")[:1000]
    for inbound_id, attempts, processed_at in failed:
        if processed_at is None or processed_at < now - timedelta(minutes=2**attempts):
            do_reset_inbound(inbound_id)
            enqueue_processing(inbound_id)
            queued += 1
    return queued
