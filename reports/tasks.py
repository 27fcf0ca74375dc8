"""django-q2 tasks of intake: thin wrappers around the actions.

Intake does not queue one task per message. It stores the message and wakes a drain
(`process_pending`), which claims pending messages a batch at a time and threads each batch in one
transaction; a burst of mail therefore costs a few tasks, not one per message. `process_inbound(id)`
handles one message on demand (retries of failed mail, the admin, `manage.py reprocess`).
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q.tasks import async_task

from reports.actions import do_claim_pending, do_process_batch, do_process_inbound, do_reset_inbound
from reports.intake import do_retry_failed_deliveries, do_unpack_webhook_deliveries
from reports.models import InboundMessage, InboundWebhook, ProcessingWakeup

# A pending message older than this was probably never drained (broker down at store time).
STALE_PENDING = timedelta(minutes=2)
# A drain hands over to a fresh task after this long, well inside the q-cluster's task timeout.
DRAIN_SECONDS = 30


def wake_processing(*, force: bool = False) -> bool:
    """Queue a drain unless one is queued and not started yet; True if this call queued it."""
    table = connection.ops.quote_name(ProcessingWakeup._meta.db_table)
    with connection.cursor() as cursor:
        if not force:
            # Under a stream of mail the flag is mostly on already. Reading it costs nothing on
            # disk; the upsert below locks the row even when it changes nothing, and so makes
            # every webhook request wait for a second WAL flush on PostgreSQL (or the SQLite
            # write lock). A drain that clears the flag after this read still claims the
            # message, which was committed before it.
            cursor.execute(f"SELECT pending FROM {table} WHERE id = 1")
            row = cursor.fetchone()
            if row is not None and row[0]:
                return False
        # One statement on both databases: insert the row, or flip it on only if it was off.
        cursor.execute(
            f"INSERT INTO {table} (id, pending) VALUES (1, TRUE) ON CONFLICT (id) DO UPDATE SET pending = TRUE "
            f"WHERE {table}.pending = FALSE RETURNING id"
        )
        flipped = cursor.fetchone() is not None
    if not (flipped or force):
        return False
    try:
        async_task("reports.tasks.process_pending", task_name="drain-inbound", group="inbound")
    except Exception:
        # Nothing is queued after all; let the next store or the sweeper try again.
        ProcessingWakeup.objects.filter(pk=1).update(pending=False)
        raise
    return True


def process_pending() -> int:
    """The drain: process pending messages a batch at a time until none is left."""
    # Cleared first: mail stored from now on wakes another drain rather than waiting on this one.
    ProcessingWakeup.objects.filter(pk=1).update(pending=False)
    batch_size = settings.ABUSEDESK_PROCESS_BATCH
    deadline = time.monotonic() + DRAIN_SECONDS
    done = 0
    while True:
        # Webhook requests stored as received become InboundMessages first (reports.intake);
        # a backlog of them is unpacked by a second worker meanwhile.
        unpacked = do_unpack_webhook_deliveries(batch_size)
        if unpacked == batch_size:
            wake_processing()
        if not (ids := do_claim_pending(batch_size)):
            if not unpacked:
                break
            # What it unpacked carried no mail (or failed); more deliveries may wait.
            if time.monotonic() > deadline:
                wake_processing()
                break
            continue
        if len(ids) == batch_size:
            # A backlog: a second worker can parse the next batch while this one works.
            wake_processing()
        done += len(do_process_batch(ids, parse_until=deadline))
        if time.monotonic() > deadline:
            # Hand over to a fresh task, which also takes whatever this batch released.
            wake_processing()
            break
        if len(ids) < batch_size:
            # A batch has a fixed cost of about twenty statements; let the next one fill up.
            time.sleep(settings.ABUSEDESK_PROCESS_LINGER_MS / 1000)
    return done


def enqueue_processing(inbound_id: int) -> None:
    async_task("reports.tasks.process_inbound", inbound_id, task_name=f"inbound-{inbound_id}", group="inbound")


def process_inbound(inbound_id: int) -> str:
    """One message on demand; safe to run twice for the same message."""
    return do_process_inbound(inbound_id).state


def sweep_inbound() -> int:
    """Drain stale pending messages and retry failed ones with exponential back-off.

    Runs on a schedule; a message that failed ABUSEDESK_PROCESS_MAX_ATTEMPTS times stays failed
    until someone runs `manage.py reprocess`.
    """
    now = timezone.now()
    stale = (
        InboundMessage.objects.filter(state=InboundMessage.State.PENDING, received_at__lt=now - STALE_PENDING)
        .exclude(claimed_until__gte=now)
        .count()
    )
    # Webhook deliveries need a drain too: failed ones due for a retry, and any no drain took.
    stale += do_retry_failed_deliveries(now=now)
    stale += InboundWebhook.objects.filter(
        state=InboundWebhook.State.PENDING, received_at__lt=now - STALE_PENDING
    ).count()
    if stale:
        # Forced: the wake-up row may say "queued" for a task the broker lost.
        wake_processing(force=True)
    queued = stale
    failed = InboundMessage.objects.filter(
        state=InboundMessage.State.FAILED, attempts__lt=settings.ABUSEDESK_PROCESS_MAX_ATTEMPTS
    ).values_list("pk", "attempts", "processed_at")[:1000]
    for inbound_id, attempts, processed_at in failed:
        if processed_at is None or processed_at < now - timedelta(minutes=2**attempts):
            do_reset_inbound(inbound_id)
            enqueue_processing(inbound_id)
            queued += 1
    return queued
