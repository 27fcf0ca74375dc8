from __future__ import annotations

import pytest
from django.db.models import Count

from bench.dashboard import BACKFILL_STATEMENT, backfill_decisions
from bench.seeding import SeedOptions, seed
from moderation.models import Decision
from moderation.transparency import queries, rollup
from reports.models import Case, Entity


@pytest.fixture
def seeded(db: None) -> None:
    seed(SeedOptions(reports=1000, batch=300, sample_decisions=4), say=lambda _: None)


def test_backfill_gives_decided_cases_their_decisions_once(seeded: None) -> None:
    written = backfill_decisions(unblock_share=0.5)
    backfilled = Decision.objects.filter(statement=BACKFILL_STATEMENT)
    assert written == backfilled.count() > 0
    declined = Case.objects.filter(status=Case.Status.DECLINED).exclude(
        decisions__statement__startswith="Seeded decision:"
    )
    assert backfilled.filter(kind=Decision.Kind.DECLINE).count() == declined.count()
    blocks = backfilled.filter(kind=Decision.Kind.BLOCK)
    # One block per entity at most, of an entity of its own actioned case, dated as the case last changed.
    assert not blocks.values("entity").annotate(n=Count("id")).filter(n__gt=1).exists()
    for block in blocks.select_related("case"):
        assert block.case.status == Case.Status.ACTIONED
        assert block.case.entities.filter(pk=block.entity_id).exists()
        assert block.created_at == block.case.updated_at
    lifted = backfilled.filter(kind=Decision.Kind.UNBLOCK)
    assert lifted.exists()
    assert not Entity.objects.filter(pk__in=lifted.values("entity"), status=Entity.Status.BLOCKED).exists()
    assert backfill_decisions() == 0


def test_the_rollup_counts_the_backfilled_decisions(seeded: None) -> None:
    backfill_decisions()
    rollup.refresh()
    first = Decision.objects.order_by("created_at").first()
    last = Decision.objects.order_by("created_at").last()
    assert first is not None and last is not None
    totals = queries.period_counts(first.created_at.date(), last.created_at.date()).totals()
    assert totals["blocks"] == Decision.objects.filter(kind=Decision.Kind.BLOCK).count()
    assert totals["declines"] == Decision.objects.filter(kind=Decision.Kind.DECLINE).count()
