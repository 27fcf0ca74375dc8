"""Batched processing threads mail exactly as one message at a time would, in far fewer queries."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.db.models import Count

from reports.actions import do_claim_pending, do_process_batch, do_process_inbound, do_store_inbound
from reports.models import Case, Entity, InboundMessage, ProcessingWakeup, Report, Reporter
from reports.tasks import process_pending, sweep_inbound, wake_processing
from tests.mail import build_mail

pytestmark = pytest.mark.django_db


def _mail(
    n: int, body: str, *, sender: str | None = None, reply_to: int | None = None, mid: int | None = None
) -> bytes:
    headers = {"In-Reply-To": f"<m{reply_to}@example.org>", "References": f"<m{reply_to}@example.org>"}
    return build_mail(
        body,
        sender=sender or f"Reporter {n} <reporter{n}@example.org>",
        message_id=f"<m{n if mid is None else mid}@example.org>",
        headers=headers if reply_to is not None else None,
    )


def _scenario() -> list[bytes]:
    """Storms, in-batch replies, redeliveries, Message-ID collisions and automatic mail, in order."""
    mails = [
        _mail(1, "Block t.me/storm_channel, beheading videos."),
        _mail(2, "t.me/storm_channel again", sender="Same <reporter1@example.org>", mid=20),
        _mail(3, "Also t.me/storm_channel and t.me/side_channel"),
        _mail(4, "Only t.me/side_channel now"),
        _mail(5, "New one: t.me/other_channel"),
        # A follow-up to mail 5 in the same batch, adding an entity to mail 5's case.
        _mail(6, "and its backup t.me/other_backup", sender="Reporter 5 <reporter5@example.org>", reply_to=5),
        # Another reporter's reply to mail 5: not attached there (rule 2), threaded by entity.
        _mail(7, "me too t.me/other_backup", reply_to=5),
        # Mail 1 again through another relay (rule 1 redelivery), and a different mail reusing its id.
        b"Received: from relay2.example.net\n" + _mail(1, "Block t.me/storm_channel, beheading videos."),
        _mail(8, "Different content t.me/fresh_channel", sender="Reporter 1 <reporter1@example.org>", mid=1),
        build_mail(
            "Delivery failed",
            sender="MAILER-DAEMON@example.net",
            subject="Undelivered Mail Returned to Sender",
            message_id="<bounce@example.net>",
            headers={"Auto-Submitted": "auto-replied"},
        ),
        _mail(9, "@storm_channel and t.me/joinchat/AAAAAbbbbbCCCCC"),
        # Rotating senders with one text and no entity: one case (SECURITY T9).
        _mail(12, "Their admins recruit teenagers in the comments, please make it stop."),
        _mail(13, "Their admins recruit teenagers in the comments, please make it stop."),
        _mail(10, "t.me/side_channel t.me/fresh_channel"),
        # Another sender reuses mail 5's Message-ID; reporter 5's next reply still goes to case 5.
        _mail(14, "Unrelated words here", sender="Mallory <mallory@example.net>", mid=5),
        _mail(15, "one more: t.me/other_third", sender="Reporter 5 <reporter5@example.org>", reply_to=5),
    ]
    return mails


def _snapshot(ids: list[int]) -> dict[str, object]:
    """What threading decided, with database ids replaced by order of first appearance."""
    labels: dict[int, str] = {}

    def label(case_id: int | None) -> str | None:
        if case_id is None:
            return None
        return labels.setdefault(case_id, f"case{len(labels) + 1}")

    order = {pk: i for i, pk in enumerate(ids)}
    rows = []
    for message in InboundMessage.objects.filter(pk__in=ids).select_related("report").order_by("pk"):
        report = getattr(message, "report", None)
        notes = report.notes if report else []
        rows.append(
            (
                message.state,
                order.get(message.duplicate_of_id),
                message.message_id_collision,
                report.kind if report else None,
                label(report.case_id) if report else None,
                report.reporter.email if report else None,
                sorted(report.entities.values_list("url", flat=True)) if report else [],
                [re.sub(r"AD-\d+", "AD-n", note) for note in notes],
            )
        )
    cases = {
        label(case.pk): (case.status, case.report_count, sorted(case.entities.values_list("url", flat=True)))
        for case in Case.objects.annotate(n=Count("reports")).order_by("pk")
        if case.pk in labels
    }
    return {
        "messages": rows,
        "cases": cases,
        "entities": sorted(Entity.objects.values_list("url", "kind", "report_count")),
        "reporters": sorted(Reporter.objects.values_list("email", "display_name", "language", "report_count")),
    }


def _run(process) -> dict[str, object]:
    """Process the scenario on top of one closed case, then undo it all."""
    with transaction.atomic():
        closed = do_process_inbound(
            do_store_inbound(_mail(0, "Old case t.me/closed_channel"), source="cli", enqueue=False).message.pk
        )
        Case.objects.filter(pk=closed.report.case_id).update(status=Case.Status.ACTIONED)
        reopen = _mail(11, "It is back: t.me/closed_channel", sender="Reporter 0 <reporter0@example.org>", reply_to=0)
        ids = [do_store_inbound(raw, source="cli", enqueue=False).message.pk for raw in [*_scenario(), reopen]]
        process(ids)
        snapshot = _snapshot([closed.pk, *ids])
        transaction.set_rollback(True)
    return snapshot


def test_a_batch_threads_exactly_like_one_message_at_a_time():
    one_by_one = _run(lambda ids: [do_process_inbound(pk) for pk in ids])
    batched = _run(do_process_batch)
    assert batched == one_by_one
    # And the scenario does exercise the rules.
    states = [row[0] for row in one_by_one["messages"]]
    assert states.count(InboundMessage.State.IGNORED) == 1
    assert any(row[2] for row in one_by_one["messages"])
    assert any(row[3] == Report.Kind.FOLLOW_UP for row in one_by_one["messages"])
    assert any("Reopened AD-n (was actioned)." in row[7] for row in one_by_one["messages"])
    assert any("Same text as an earlier report on AD-n; added to it." in row[7] for row in one_by_one["messages"])


def test_a_batch_uses_a_fixed_number_of_queries(django_assert_max_num_queries):
    ids = [
        do_store_inbound(
            _mail(n, f"t.me/storm_channel and t.me/channel_{n % 7}", sender=f"r{n}@example.org"),
            source="cli",
            enqueue=False,
        ).message.pk
        for n in range(50)
    ]
    with django_assert_max_num_queries(30):
        processed = do_process_batch(ids)
    assert {m.state for m in processed} == {InboundMessage.State.PROCESSED}
    storm = Entity.objects.get(url="https://t.me/storm_channel")
    assert storm.report_count == 50
    assert Case.objects.count() == 1
    assert Case.objects.get().report_count == 50
    assert Reporter.objects.filter(report_count=1).count() == 50


def test_a_message_that_breaks_threading_fails_alone(monkeypatch):
    ids = [do_store_inbound(_mail(n, f"t.me/channel_{n}"), source="cli", enqueue=False).message.pk for n in range(3)]
    from reports import threader

    real = threader._Batch.thread

    def thread(self, item, message):
        if item.inbound_id == ids[1]:
            raise ValueError("cannot thread this one")
        return real(self, item, message)

    monkeypatch.setattr(threader._Batch, "thread", thread)
    states = [m.state for m in do_process_batch(ids)]
    assert states == ["processed", "failed", "processed"]
    assert InboundMessage.objects.get(pk=ids[1]).error == "ValueError: cannot thread this one"
    assert Report.objects.count() == 2


def test_claims_keep_two_drains_apart_and_expire():
    ids = [do_store_inbound(_mail(n, f"t.me/channel_{n}"), source="cli", enqueue=False).message.pk for n in range(5)]
    assert do_claim_pending(3) == ids[:3]
    assert do_claim_pending(3) == ids[3:]
    assert do_claim_pending(3) == []
    InboundMessage.objects.filter(pk=ids[0]).update(claimed_until="2000-01-01T00:00:00Z")
    assert do_claim_pending(3) == ids[:1]


def test_a_burst_of_mail_queues_one_drain_until_it_starts(monkeypatch, django_capture_on_commit_callbacks):
    queued: list[str] = []
    monkeypatch.setattr("reports.tasks.async_task", lambda func, **kwargs: queued.append(func))
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(20):
            with transaction.atomic():
                do_store_inbound(_mail(n, f"t.me/channel_{n}"), source="cli")
    assert queued == ["reports.tasks.process_pending"]
    assert ProcessingWakeup.objects.get().pending

    monkeypatch.setattr("reports.tasks.async_task", lambda func, **kwargs: None)
    assert process_pending() == 20
    assert not ProcessingWakeup.objects.get().pending
    assert set(InboundMessage.objects.values_list("state", flat=True)) == {"processed"}
    # Mail arriving after the drain started wakes a new one.
    assert wake_processing() is True


def test_stored_mail_is_processed_by_the_drain_under_the_sync_cluster(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        stored = [do_store_inbound(_mail(n, "t.me/storm_channel"), source="cli").message for n in range(3)]
    assert [InboundMessage.objects.get(pk=m.pk).state for m in stored] == ["processed"] * 3
    assert Case.objects.get().report_count == 3


def test_storing_is_one_insert_and_a_read_of_the_wakeup_while_a_drain_is_queued(
    monkeypatch, django_assert_num_queries, django_capture_on_commit_callbacks
):
    """What a webhook request costs the database, the acknowledgement's hot path."""
    monkeypatch.setattr("reports.tasks.async_task", lambda func, **kwargs: None)
    assert wake_processing() is True
    with django_assert_num_queries(2) as captured, django_capture_on_commit_callbacks(execute=True):
        result = do_store_inbound(_mail(1, "t.me/channel_1"), source="webhook:postmark", provider_event_id="ev-1")
    assert result.created and result.message.pk == InboundMessage.objects.get().pk
    insert, read = (query["sql"] for query in captured.captured_queries)
    assert insert.startswith("INSERT INTO") and "ON CONFLICT DO NOTHING" in insert
    assert read.startswith("SELECT pending FROM")


def test_a_redelivery_inside_a_transaction_leaves_the_transaction_usable():
    raw = _mail(1, "t.me/channel_1")
    with transaction.atomic():
        first = do_store_inbound(raw, source="webhook:postmark", provider_event_id="ev-1", enqueue=False)
        same_bytes = do_store_inbound(raw, source="cli", enqueue=False)
        same_event = do_store_inbound(
            _mail(2, "t.me/channel_2"), source="webhook:postmark", provider_event_id="ev-1", enqueue=False
        )
        assert InboundMessage.objects.count() == 1  # the transaction still answers
    assert (same_bytes.created, same_event.created) == (False, False)
    assert same_bytes.message.pk == same_event.message.pk == first.message.pk


def test_nul_bytes_in_envelope_and_provider_fields_are_replaced_not_refused():
    event_id = "ev\x001" + "x" * 300  # longer than the column, too
    stored = do_store_inbound(
        _mail(1, "t.me/channel_1"),
        source="webhook:x\x00y",
        provider_event_id=event_id,
        envelope_sender="a\x00b@example.org",
        envelope_recipient="abuse\x00@example.org",
        enqueue=False,
    ).message
    stored.refresh_from_db()
    assert (stored.source, stored.provider_event_id, stored.envelope_sender, stored.envelope_recipient) == (
        "webhook:x\ufffdy",
        ("ev\ufffd1" + "x" * 300)[:255],
        "a\ufffdb@example.org",
        "abuse\ufffd@example.org",
    )
    # The same delivery again, re-serialised by the provider, is recognised by its event id.
    again = do_store_inbound(_mail(2, "t.me/channel_2"), source="webhook:x\x00y", provider_event_id=event_id)
    assert (again.created, again.message.pk) == (False, stored.pk)


def test_a_failed_enqueue_leaves_the_wakeup_off(monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr("reports.tasks.async_task", broken)
    with pytest.raises(ConnectionError):
        wake_processing()
    assert not ProcessingWakeup.objects.get().pending


def test_sweeper_wakes_a_drain_for_stale_pending_mail_even_if_one_seems_queued(monkeypatch):
    stored = do_store_inbound(_mail(1, "t.me/channel_1"), source="cli", enqueue=False).message
    InboundMessage.objects.filter(pk=stored.pk).update(received_at="2000-01-01T00:00:00Z")
    ProcessingWakeup.objects.create(pending=True)
    queued: list[str] = []
    monkeypatch.setattr("reports.tasks.async_task", lambda func, **kwargs: queued.append(func))
    assert sweep_inbound() == 1
    assert queued == ["reports.tasks.process_pending"]
    # A message a live drain has claimed is not stale.
    do_claim_pending(10)
    queued.clear()
    assert sweep_inbound() == 0
    assert queued == []


def test_after_a_partial_batch_the_drain_lingers_for_more_mail(monkeypatch, settings):
    settings.ABUSEDESK_PROCESS_LINGER_MS = 250
    slept: list[float] = []
    late = _mail(99, "t.me/late_channel")

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            # Mail that arrives while the drain waits is threaded in its next batch.
            do_store_inbound(late, source="smtp", enqueue=False)

    monkeypatch.setattr("reports.tasks.time.sleep", sleep)
    monkeypatch.setattr("reports.tasks.async_task", lambda func, **kwargs: None)
    do_store_inbound(_mail(1, "t.me/early_channel"), source="smtp", enqueue=False)
    assert process_pending() == 2
    assert slept == [0.25, 0.25]
    assert set(InboundMessage.objects.values_list("state", flat=True)) == {"processed"}


def test_past_its_deadline_a_batch_releases_what_it_has_not_parsed(monkeypatch):
    from types import SimpleNamespace

    from reports import actions

    ids = [do_store_inbound(_mail(n, f"t.me/channel_{n}"), source="cli", enqueue=False).message.pk for n in range(3)]
    assert do_claim_pending(10) == ids
    # The clock as the batch reads it before each message: the third one comes too late.
    clock = iter([0.0, 0.0, 100.0])
    monkeypatch.setattr(actions, "time", SimpleNamespace(monotonic=lambda: next(clock, 100.0)))
    processed = do_process_batch(ids, parse_until=50.0)
    assert [m.pk for m in processed] == ids[:2]
    rest = InboundMessage.objects.get(pk=ids[2])
    assert (rest.state, rest.claimed_until) == ("pending", None)
    assert do_claim_pending(10) == ids[2:]
