#!/usr/bin/env python3
"""Dashboard benchmark: the transparency pages and the rollup behind them, on a million seeded reports.

    .venv/bin/python bench/dashboard.py                    # fresh DB, seed 1,000,000 reports, measure
    .venv/bin/python bench/dashboard.py --reports 50000    # a quick run
    .venv/bin/python bench/dashboard.py --keep             # reuse the seeded database of an earlier run

It (re)creates the PostgreSQL database `abusedesk_bench_dashboard`, migrates it, seeds it
(bench/seeding.py), and gives the seeded decided cases their decisions (see backfill_decisions:
the seeder marks cases actioned or declined in bulk without Decision rows, and a dashboard of
decisions needs them). Then:

1. the rollup: a full rebuild (what the first refresh does), then the refresh that follows five
   busy minutes: 250 reports through the real intake (50 about the storm case's channel, one
   each about 200 open cases of any age), and 30 decisions through the real actions;
2. the pages, through Django's test Client in this process (URL resolution, middleware, view,
   queries, template; no network): the dashboard signed in as a lead over the last 30 days (the
   default, whose times to decision the refresh stores) by each breakdown, over the seeded 90
   days and over a year; the public page and feed. "First view" empties the cache before every
   request (a period's times to decision and the public figures are computed once per refresh);
   "again" leaves it. Median and p95 of `--requests` requests per page, taken round-robin after
   `--warmup` each; query counts from one more request;
3. `transparency_report` over the 90 days, JSON (a batch job: its time, once).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# bench/queue.py would shadow the standard library's queue module, which psycopg imports.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import argparse  # noqa: E402
import io  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import timedelta  # noqa: E402
from typing import Any  # noqa: E402

PG_HOST = "/var/run/postgresql"
DB_NAME = "abusedesk_bench_dashboard"
TARGET_P95_MS = 200.0
BACKFILL_STATEMENT = "Seeded decision (bench/dashboard.py backfill)."


@dataclass
class Row:
    name: str
    url: str
    uncached: bool = False
    median_ms: float = 0.0
    p95_ms: float = 0.0
    cpu_ms: float = 0.0
    queries: int = 0
    kib: float = 0.0


def _prepare_database(keep: bool) -> bool:
    """Create the benchmark database (dropping an old one unless `keep`); True if it existed."""
    import psycopg

    with psycopg.connect(f"dbname=postgres host={PG_HOST}", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone() is not None
        if exists and keep:
            return True
        if exists:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return False


def _setup_django() -> None:
    os.environ["DATABASE_URL"] = f"postgres:///{DB_NAME}?host={PG_HOST}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusedesk.settings")
    # Production-like: no DEBUG query log while timing (CaptureQueriesContext counts separately).
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["ABUSEDESK_TRANSPARENCY_PUBLIC"] = "true"
    os.environ["ABUSEDESK_TRANSPARENCY_REQUESTS_PER_MINUTE"] = "1000000"
    import django

    django.setup()


def backfill_decisions(*, seed: int = 1, unblock_share: float = 0.01) -> int:
    """Give each seeded actioned case a block of one of its blocked entities and each seeded
    declined case a decline, dated at the case's last update and made by its assignee, as the
    moderator would have; unblock `unblock_share` of the blocks a day later. Bench data, written
    in bulk like the seeder's statuses, without audit entries. Idempotent; returns rows written."""
    from django.db import transaction

    from moderation.models import Decision, DeclineReason
    from reports.models import Case, Entity

    if Decision.objects.filter(statement=BACKFILL_STATEMENT).exists():
        return 0
    rng = random.Random(seed)
    decided = set(Decision.objects.exclude(case=None).values_list("case_id", flat=True))
    blocked_by_decision = set(Decision.objects.filter(kind=Decision.Kind.BLOCK).values_list("entity_id", flat=True))
    links = Case.entities.through.objects.filter(
        case__status=Case.Status.ACTIONED,
        entity__status=Entity.Status.BLOCKED,
    ).exclude(entity__kind=Entity.Kind.PRIVATE_CHAT)
    entity_of: dict[int, int] = {}
    for case_id, entity_id in links.order_by("case_id", "entity_id").values_list("case_id", "entity_id"):
        if case_id not in entity_of and entity_id not in blocked_by_decision:
            entity_of[case_id] = entity_id
            blocked_by_decision.add(entity_id)
    rows: list[Decision] = []
    closed = Case.objects.filter(status__in=[Case.Status.ACTIONED, Case.Status.DECLINED]).exclude(pk__in=decided)
    for case_id, status, category, actor_id, updated_at in closed.values_list(
        "pk", "status", "category", "assignee_id", "updated_at"
    ).order_by("pk"):
        if status == Case.Status.ACTIONED:
            if case_id not in entity_of:
                continue  # its entities were blocked through another case
            rows.append(
                Decision(
                    kind=Decision.Kind.BLOCK,
                    case_id=case_id,
                    entity_id=entity_of[case_id],
                    category=category,
                    statement=BACKFILL_STATEMENT,
                    actor_id=actor_id,
                    created_at=updated_at,
                )
            )
            if rng.random() < unblock_share:
                rows.append(
                    Decision(
                        kind=Decision.Kind.UNBLOCK,
                        entity_id=entity_of[case_id],
                        statement=BACKFILL_STATEMENT,
                        actor_id=actor_id,
                        created_at=updated_at + timedelta(days=1),
                    )
                )
        else:
            rows.append(
                Decision(
                    kind=Decision.Kind.DECLINE,
                    case_id=case_id,
                    decline_reason=rng.choice(DeclineReason.values),
                    statement=BACKFILL_STATEMENT,
                    actor_id=actor_id,
                    created_at=updated_at,
                )
            )
    lifted = [row.entity_id for row in rows if row.kind == Decision.Kind.UNBLOCK]
    with transaction.atomic():
        Decision.objects.bulk_create(rows, batch_size=5000)
        Entity.objects.filter(pk__in=lifted).update(status=Entity.Status.ACTIVE)
    return len(rows)


def _mail(number: int, entity_url: str) -> bytes:
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"] = f"Bench Reporter {number} <bench.{number}@reporters.example>"
    mail["To"] = "abuse@abusedesk.localhost"
    mail["Subject"] = "Abuse report"
    mail["Message-ID"] = f"<bench-busy-{number}-{random.getrandbits(64):x}@reporters.example>"
    mail.set_content(f"Please block {entity_url}, it posts the same propaganda videos again and again every day.")
    return mail.as_bytes()


def _busy_five_minutes() -> tuple[int, int]:
    """Five busy minutes through the real intake and actions: 250 reports, 50 of them about the
    storm case's channel and one each about the channels of 200 open cases of any age; then 30
    open cases blocked or declined."""
    from django.contrib.auth.models import User

    from moderation.actions import Actor, do_block_entity, do_decline_case
    from moderation.models import DeclineReason, PolicyCategory
    from reports.actions import do_process_batch, do_store_inbound_many
    from reports.models import Case, Entity

    rng = random.Random(5)
    storm = Case.objects.order_by("-report_count").first()
    assert storm is not None
    open_ids = list(
        Case.objects.filter(status__in=Case.OPEN_STATUSES).exclude(pk=storm.pk).values_list("pk", flat=True)
    )
    chosen = rng.sample(open_ids, min(200, len(open_ids)))
    urls = [str(storm.entities.order_by("pk").values_list("url", flat=True)[0])] * 50
    urls += [
        url for case in Case.objects.filter(pk__in=chosen) for url in case.entities.values_list("url", flat=True)[:1]
    ]
    stored = do_store_inbound_many([_mail(n, url) for n, url in enumerate(urls)], source="bench", enqueue=False)
    ids = [result.message.pk for result in stored]
    for start in range(0, len(ids), 200):
        do_process_batch(ids[start : start + 200])
    moderator = User.objects.get(username="seed-mod-01")
    decided = 0
    for case in Case.objects.filter(pk__in=rng.sample(open_ids, min(60, len(open_ids))))[:30]:
        entity = case.entities.filter(status=Entity.Status.ACTIVE).exclude(kind=Entity.Kind.PRIVATE_CHAT).first()
        if entity is not None:
            do_block_entity(entity, category=PolicyCategory.SPAM, statement="Bench.", actor=Actor(moderator), case=case)
        else:
            do_decline_case(case, reason=DeclineReason.DUPLICATE, statement="Bench.", actor=Actor(moderator))
        decided += 1
    return len(urls), decided


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def _get(client: Any, row: Row) -> Any:
    from django.core.cache import cache

    if row.uncached:
        cache.clear()
    response = client.get(row.url)
    if response.status_code != 200:
        raise SystemExit(f"{row.url} answered {response.status_code}")
    return response


def _measure(client: Any, rows: list[Row], *, warmup: int, requests: int) -> None:
    """Round-robin over the pages, so that load from elsewhere on the machine hits all of them alike."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for row in rows:
        for _ in range(warmup):
            row.kib = len(_get(client, row).content) / 1024
    wall: dict[str, list[float]] = {row.name: [] for row in rows}
    cpu: dict[str, list[float]] = {row.name: [] for row in rows}
    for _ in range(requests):
        for row in rows:
            started, started_cpu = time.perf_counter(), time.process_time()
            _get(client, row)
            wall[row.name].append((time.perf_counter() - started) * 1000)
            cpu[row.name].append((time.process_time() - started_cpu) * 1000)
    for row in rows:
        row.median_ms = statistics.median(wall[row.name])
        row.p95_ms = _percentile(wall[row.name], 0.95)
        row.cpu_ms = statistics.median(cpu[row.name])
        with CaptureQueriesContext(connection) as captured:
            _get(client, row)
        row.queries = len(captured.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000, help="reports to seed (default 1,000,000)")
    parser.add_argument("--keep", action="store_true", help="reuse an existing seeded database")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page (default 40)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first (default 3)")
    parser.add_argument(
        "--pages-only", action="store_true", help="with --keep: measure the pages on the rollup as it is"
    )
    args = parser.parse_args()

    existed = _prepare_database(args.keep)
    _setup_django()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from moderation.models import DailyCount, Decision, FirstDecision
    from moderation.transparency import rollup
    from reports.models import Case, InboundMessage, Report

    started = time.monotonic()
    call_command("migrate", verbosity=0)
    if not (existed and InboundMessage.objects.filter(source="seed").exists()):
        from bench.seeding import SeedOptions, seed

        seed(SeedOptions(reports=args.reports))
        print(f"migrate + seed: {time.monotonic() - started:.0f} s")
    written = backfill_decisions()
    if written:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(Decision._meta.db_table)}")
    print(
        f"\nPostgreSQL {DB_NAME}: {Report.objects.count():,} reports, {Case.objects.count():,} cases, "
        f"{Decision.objects.count():,} decisions ({written:,} backfilled now). "
        f"Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.\n"
    )

    if not args.pages_only:
        began = time.perf_counter()
        result = rollup.refresh(rebuild=True)
        rebuild_s = time.perf_counter() - began
        with connection.cursor() as cursor:
            for model in (DailyCount, FirstDecision):
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        print(
            f"rollup rebuild: {rebuild_s:.1f} s for {result.days} days and {result.cases:,} first decisions "
            f"({DailyCount.objects.count():,} daily rows)"
        )
        reported, decided = _busy_five_minutes()
        began = time.perf_counter()
        result = rollup.refresh()
        print(
            f"rollup refresh after {reported} new reports and {decided} decisions: "
            f"{time.perf_counter() - began:.2f} s, {result.days} days ({result.by_group}) and {result.cases} cases recomputed"
        )

    today = timezone.localdate()
    q90 = f"since={(today - timedelta(days=89)).isoformat()}&until={today.isoformat()}"
    q366 = f"since={(today - timedelta(days=365)).isoformat()}&until={today.isoformat()}"
    rows = [
        Row("dashboard, last 30 days by category", "/dashboard/"),
        Row("dashboard, last 30 days by language", "/dashboard/?by=language"),
        Row("dashboard, last 30 days by kind", "/dashboard/?by=kind"),
        Row("dashboard, 90 days by category, first view", f"/dashboard/?{q90}", uncached=True),
        Row("dashboard, 90 days by category, again", f"/dashboard/?{q90}"),
        Row("dashboard, 366 days by kind, first view", f"/dashboard/?{q366}&by=kind", uncached=True),
        Row("dashboard, 366 days by kind, again", f"/dashboard/?{q366}&by=kind"),
        Row("public page, last 30 days, first view", "/transparency/", uncached=True),
        Row("public feed, 90 days, first view", f"/transparency/feed.json?{q90}", uncached=True),
        Row("public feed, 90 days, again", f"/transparency/feed.json?{q90}"),
    ]
    client = Client()
    client.force_login(User.objects.get(username="seed-lead-1"))
    print(
        f"\nServer time in-process through django.test.Client, median and p95 of {args.requests} requests per "
        f"page, round-robin, after {args.warmup} warm-up requests each.\n"
    )
    _measure(client, rows, warmup=args.warmup, requests=args.requests)
    header = f"| page | median ms | p95 ms | cpu ms | queries | KiB | p95 < {TARGET_P95_MS:.0f} ms |"
    print(header)
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        ok = "yes" if row.p95_ms < TARGET_P95_MS else "NO"
        print(
            f"| {row.name} | {row.median_ms:.0f} | {row.p95_ms:.0f} | {row.cpu_ms:.0f} | {row.queries} "
            f"| {row.kib:.0f} | {ok} |"
        )
    print(
        "(cpu ms: this process's CPU time per request, the median; PostgreSQL's own time is not in it. "
        f"Load average now {os.getloadavg()[0]:.1f}.)"
    )

    if not args.pages_only:
        began = time.perf_counter()
        out = io.StringIO()
        call_command(
            "transparency_report",
            "--from",
            (today - timedelta(days=89)).isoformat(),
            "--to",
            today.isoformat(),
            stdout=out,
        )
        print(
            f"\ntransparency_report, 90 days, JSON: {time.perf_counter() - began:.1f} s ({len(out.getvalue()) / 1024:.0f} KiB). "
            f"Load average now {os.getloadavg()[0]:.1f}."
        )


if __name__ == "__main__":
    main()
