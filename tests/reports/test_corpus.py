"""Every real-world mail in tests/data/mail goes through the whole intake without escaping errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reports.actions import do_process_inbound, do_store_inbound
from reports.models import InboundMessage, Report

CORPUS = Path(__file__).parent.parent / "data" / "mail"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in {".md", ".json"})
# SECURITY.md: at most 5 s of parsing per message. Measured on the slowest file here in well
# under a second, so this only catches a pathological regression, not noise.
BUDGET_SECONDS = 5.0


def test_the_corpus_is_present():
    assert len(FILES) > 250


@pytest.mark.django_db
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_mail_is_stored_and_processed_or_failed_readably(path):
    raw = path.read_bytes()
    stored = do_store_inbound(raw, source="cli", enqueue=False)
    started = time.monotonic()
    message = do_process_inbound(stored.message.pk)
    elapsed = time.monotonic() - started
    assert InboundMessage.objects.filter(pk=message.pk, sha256=stored.message.sha256).exists()
    assert elapsed < BUDGET_SECONDS
    if message.state == InboundMessage.State.FAILED:
        assert message.error and "Traceback" not in message.error
    else:
        assert message.state in (InboundMessage.State.PROCESSED, InboundMessage.State.IGNORED)
        report = Report.objects.get(inbound=message)
        assert "\x00" not in report.text and "\x00" not in report.subject
        assert (report.case is None) == (report.kind == Report.Kind.AUTOMATIC)


@pytest.mark.django_db
def test_auto_replies_and_bounces_in_the_corpus_open_no_case():
    folder = CORPUS / "sisimai-arf-dsn-autoreply"
    samples = sorted((folder / "autoreply-rfc3834").glob("*")) + sorted((folder / "dsn-rfc3464").glob("*"))[:5]
    assert samples
    for path in samples:
        stored = do_store_inbound(path.read_bytes(), source="cli", enqueue=False)
        do_process_inbound(stored.message.pk)
    kinds = set(Report.objects.values_list("kind", flat=True))
    assert kinds == {Report.Kind.AUTOMATIC}


@pytest.mark.django_db
def test_arf_feedback_reports_are_reports_with_their_original_as_evidence():
    paths = sorted((CORPUS / "stalwart-mail-auth-arf").glob("*.eml"))
    assert paths
    for path in paths:
        stored = do_store_inbound(path.read_bytes(), source="cli", enqueue=False)
        message = do_process_inbound(stored.message.pk)
        report = message.report
        assert report.kind == Report.Kind.REPORT
        assert report.arf
        assert "forwarded or attached message" in report.text
