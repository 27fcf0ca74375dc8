#!/usr/bin/env python3
"""Queue benchmark: server time of the moderator workspace on a million seeded reports.

    .venv/bin/python bench/queue.py                    # fresh DB, seed 1,000,000 reports, measure
    .venv/bin/python bench/queue.py --reports 50000    # a quick run
    .venv/bin/python bench/queue.py --keep             # reuse the seeded database of an earlier run
    .venv/bin/python bench/queue.py --keep --explain   # also EXPLAIN ANALYZE each view's slowest query

It (re)creates the PostgreSQL database `abusedesk_bench_queue`, migrates it, seeds it with
`manage.py seed`, then requests each page through Django's test Client in this process, signed in
as a lead: the queue's first page, a filtered queue (status, language and entity kind), a
full-text search, and the case page of the 10,000-report case. Times are wall-clock around
`Client.get()` (URL resolution, middleware, view, queries, template; no network, no browser),
median and p95 over `--requests` requests after `--warmup` ones. Query counts come from a separate
request, as do the counts at page sizes 25 and 100, which must not differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `queue`: keep its folder off the import path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import partial  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

PG_HOST = "/var/run/postgresql"
DB_NAME = "abusedesk_bench_queue"
TARGET_P95_MS = 100.0


@dataclass
class Row:
    name: str
    url: str
    median_ms: float = 0.0
    p95_ms: float = 0.0
    cpu_ms: float = 0.0
    queries: int = 0
    slowest_sql: str = ""
    slowest_ms: float = 0.0
    size: int = 0


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
    import django

    django.setup()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@contextlib.contextmanager
def _page_sizes(queue_size: int, case_size: int) -> Iterator[None]:
    """Temporarily change the queue's and the case page's page sizes."""
    from moderation.views import case as case_views
    from moderation.views import queue as queue_views

    saved_defaults = queue_views._queue_context.__defaults__
    saved_case = case_views.REPORTS_PER_PAGE
    queue_views._queue_context.__defaults__ = (queue_size,)
    case_views.REPORTS_PER_PAGE = case_size
    try:
        yield
    finally:
        queue_views._queue_context.__defaults__ = saved_defaults
        case_views.REPORTS_PER_PAGE = saved_case


def _count_queries(get: Callable[[], Any]) -> tuple[int, str, float]:
    """(queries, the slowest one's SQL, its time in ms) of one request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        get()
    slowest = max(captured.captured_queries, key=lambda q: float(q["time"]), default={"sql": "", "time": "0"})
    return len(captured.captured_queries), slowest["sql"], float(slowest["time"]) * 1000


def _get(client: Any, url: str) -> Any:
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    return response


def _measure(client: Any, rows: list[Row], *, warmup: int, requests: int) -> None:
    """Round-robin over the pages, so that load from elsewhere on the machine hits all of them alike."""
    for row in rows:
        for _ in range(warmup):
            row.size = len(_get(client, row.url).content)
    wall: dict[str, list[float]] = {row.url: [] for row in rows}
    cpu: dict[str, list[float]] = {row.url: [] for row in rows}
    for _ in range(requests):
        for row in rows:
            started, started_cpu = time.perf_counter(), time.process_time()
            _get(client, row.url)
            wall[row.url].append((time.perf_counter() - started) * 1000)
            cpu[row.url].append((time.process_time() - started_cpu) * 1000)
    for row in rows:
        row.median_ms = statistics.median(wall[row.url])
        row.p95_ms = _percentile(wall[row.url], 0.95)
        row.cpu_ms = statistics.median(cpu[row.url])
        row.queries, row.slowest_sql, row.slowest_ms = _count_queries(partial(_get, client, row.url))


def _explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(line for (line,) in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000, help="reports to seed (default 1,000,000)")
    parser.add_argument("--keep", action="store_true", help="reuse an existing seeded database")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page first (default 5)")
    parser.add_argument("--search", default="weapons", help="the full-text search term (default: weapons)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest query")
    parser.add_argument("--quick", action="store_true", help="only the four main pages, no other searches")
    args = parser.parse_args()

    existed = _prepare_database(args.keep)
    _setup_django()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from reports.models import Case, InboundMessage, Report, Reporter

    started = time.monotonic()
    call_command("migrate", verbosity=0)
    if not (existed and InboundMessage.objects.filter(source="seed").exists()):
        from bench.seeding import SeedOptions, seed

        seed(SeedOptions(reports=args.reports))
        print(f"migrate + seed: {time.monotonic() - started:.0f} s")
    total_reports = Report.objects.count()
    big = (
        Case.objects.filter(report_count=10_000).order_by("pk").first()
        or Case.objects.order_by("-report_count").first()
    )
    if big is None:
        raise SystemExit(f"{DB_NAME} holds no case: run without --keep to seed it")
    lead = User.objects.get(username="seed-lead-1")
    client = Client()
    client.force_login(lead)

    channel = big.entities.order_by("pk").first()
    reporter = Reporter.objects.filter(reports__case=big).order_by("pk").first()
    rows = [
        Row("queue, first page", "/"),
        Row("queue filtered: open, ru, bot", "/?status=open&language=ru&kind=bot"),
        Row(f'search "{args.search}"', f"/?q={quote(args.search)}"),
        Row(f"case {big.reference} ({big.report_count:,} reports)", f"/cases/{big.reference}/"),
    ]
    if not args.quick:
        # Other kinds of search: how a moderator looks for a channel, a reporter, a case, and a
        # word that is common in one language only (matches cluster in a few cases).
        name = str(channel.url).rsplit("/", 1)[-1] if channel else "news"
        for label, term in [
            ("channel", name),
            ("reporter", str(reporter.email) if reporter else "example"),
            ("reference", str(big.reference)),
            ("word of one language", "Мошенничество"),
        ]:
            rows.append(Row(f'search {label} "{term[:24]}"', f"/?q={quote(term)}"))
    print(
        f"\nPostgreSQL {DB_NAME}: {total_reports:,} reports, {Case.objects.count():,} cases. "
        f"Server time in-process through django.test.Client, signed in as lead {lead.username!r}; "
        f"median and p95 of {args.requests} requests per page, taken round-robin, after {args.warmup} warm-up "
        "requests each. "
        f"Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.\n"
    )
    _measure(client, rows, warmup=args.warmup, requests=args.requests)

    sizes: dict[int, list[int]] = {}
    for size in (25, 100):
        with _page_sizes(size, size):
            sizes[size] = [_count_queries(partial(_get, client, row.url))[0] for row in rows]

    header = (
        f"{'page':<44} {'median ms':>10} {'p95 ms':>8} {'cpu ms':>7} {'queries':>8} {'q@25':>5} {'q@100':>6} "
        f"{'KB':>5}  p95<{TARGET_P95_MS:.0f}"
    )
    print(header)
    print("-" * len(header))
    for index, row in enumerate(rows):
        ok = "yes" if row.p95_ms < TARGET_P95_MS else "NO"
        print(
            f"{row.name:<44} {row.median_ms:>10.1f} {row.p95_ms:>8.1f} {row.cpu_ms:>7.1f} {row.queries:>8} "
            f"{sizes[25][index]:>5} {sizes[100][index]:>6} {row.size / 1024:>5.0f}  {ok}"
        )
    print(
        f"(cpu ms: this process's CPU time per request, the median; the database's own time is not in it. "
        f"Load average now {os.getloadavg()[0]:.1f}.)"
    )
    grows = [row.name for i, row in enumerate(rows) if sizes[25][i] != sizes[100][i]]
    print(f"\nQuery count independent of page size: {'yes' if not grows else 'NO: ' + ', '.join(grows)}")
    for row in rows:
        print(f"slowest query of {row.name}: {row.slowest_ms:.1f} ms")
        if args.explain:
            print(f"  SQL: {row.slowest_sql[:2000]}")
            print("  " + _explain(row.slowest_sql).replace("\n", "\n  "))


if __name__ == "__main__":
    main()
