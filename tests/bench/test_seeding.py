from __future__ import annotations

import pytest
from django.db.models import Count, F, Max

from bench.seeding import SeedError, SeedOptions, seed
from moderation.audit import verify_chain
from moderation.models import AuditAction, AuditEntry, Decision
from reports.models import Attachment, Case, Entity, InboundMessage, Report, ReportEntity, Reporter


@pytest.fixture
def seeded(db: None) -> None:
    seed(SeedOptions(reports=1000, batch=300, sample_decisions=4), say=lambda _: None)


def test_seed_writes_the_requested_reports_with_counters_that_agree(seeded: None) -> None:
    assert Report.objects.count() == InboundMessage.objects.filter(source="seed").count() == 1000
    assert not Case.objects.annotate(n=Count("reports")).exclude(report_count=F("n")).exists()
    assert not Case.objects.annotate(last=Max("reports__received_at")).exclude(last_report_at=F("last")).exists()
    assert not Entity.objects.annotate(n=Count("reportentity")).exclude(report_count=F("n")).exists()
    assert not Reporter.objects.annotate(n=Count("reports")).exclude(report_count=F("n")).exists()
    # Intake attaches an entity to a case only when one of the case's reports names it.
    assert not Case.entities.through.objects.exclude(entity__reportentity__report__case=F("case")).exists()
    assert Case.objects.filter(reference__startswith="AD-").count() == Case.objects.count()


def test_seed_shares_one_raw_file_and_one_image(seeded: None) -> None:
    assert InboundMessage.objects.values("raw").distinct().count() == 1
    assert InboundMessage.objects.values("sha256").distinct().count() == 1000
    assert Attachment.objects.exists()
    assert Attachment.objects.values("file").distinct().count() == 1


def test_seed_has_a_campaign_languages_and_closed_cases(seeded: None) -> None:
    # Below 40,000 reports the largest campaign is a quarter of them.
    assert Case.objects.order_by("-report_count").first().report_count == 250
    assert Report.objects.values("language").distinct().count() >= 8
    assert {"new", "open", "actioned", "declined"} <= set(Case.objects.values_list("status", flat=True))
    assert ReportEntity.objects.filter(defanged=True).exists()


def test_seed_decides_a_sample_through_the_real_actions(seeded: None) -> None:
    entries = list(AuditEntry.objects.order_by("id"))
    assert len(entries) == Decision.objects.count() == 4
    for entry in entries:
        decision = Decision.objects.get(public_id=entry.data["decision"])
        assert entry.action in (AuditAction.ENTITY_BLOCKED, AuditAction.CASE_DECLINED)
        assert entry.actor.username.startswith("seed-mod-")
        assert (entry.case, entry.actor) == (decision.case, decision.actor)
    assert verify_chain() is None


def test_seed_refuses_a_database_that_was_seeded_already(seeded: None) -> None:
    before = AuditEntry.objects.count()
    with pytest.raises(SeedError, match="already holds seeded data"):
        seed(SeedOptions(reports=10), say=lambda _: None)
    assert Report.objects.count() == 1000
    assert AuditEntry.objects.count() == before


def test_the_same_seed_gives_the_same_data(db: None) -> None:
    seed(SeedOptions(reports=300, seed=7, sample_decisions=0), say=lambda _: None)
    first = list(Report.objects.order_by("id").values_list("subject", "text", "language", "case__report_count"))
    assert not AuditEntry.objects.exists()
    for model in (Attachment, Report, InboundMessage, Case.entities.through, Case, Entity, Reporter):
        model.objects.all().delete()
    seed(SeedOptions(reports=300, seed=7, sample_decisions=0), say=lambda _: None)
    again = list(Report.objects.order_by("id").values_list("subject", "text", "language", "case__report_count"))
    assert again == first


def test_the_seed_script_seeds_once_and_then_refuses(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.seed import main

    assert main(["--reports", "60", "--decisions", "0"]) == 0
    assert "60 reports" in capsys.readouterr().out
    assert main(["--reports", "10"]) == 1
    assert "already holds seeded data" in capsys.readouterr().err
    assert Report.objects.count() == 60
