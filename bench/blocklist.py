#!/usr/bin/env python3
"""Blocklist API benchmark: a full export and incremental polls, through real HTTP, on PostgreSQL.

    .venv/bin/python bench/blocklist.py                      # 1,000,000 entities, 100,000 blocked
    .venv/bin/python bench/blocklist.py --entities 100000 --blocked 10000 --polls 50

It creates the database abusedesk_bench_blocklist (dropping an old one), migrates it, loads the
entities, block decisions and BlocklistChange rows with COPY, then makes the last `--changes`
blocks and unblocks through the real actions (moderation.actions, as the API would). It starts
`manage.py runserver` (DEBUG off) on a free loopback port and measures over HTTP with an API key:

  - the full export (GET /api/v1/blocklist/): time to first byte and to the last byte, and the
    server's resident memory before and at its peak (VmHWM), to show the stream needs constant memory;
  - incremental polls (GET /api/v1/blocklist/?since=<cursor>) that each return `--changes` changes,
    and polls answered 304 by If-None-Match: p50/p95/p99 over `--polls` requests, each on a new
    connection as a poller would make it.

The server and the database are removed at the end, also on Ctrl-C (`--keep` keeps the database).
"""

from __future__ import annotations

import os
import sys

# Run as a script, bench/ comes first on the import path, and bench/queue.py (the queue benchmark)
# would shadow the standard library's queue module that psycopg imports.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PG_HOST = "/var/run/postgresql"
DB_NAME = "abusedesk_bench_blocklist"
TARGET_P95_MS = 50.0
CATEGORIES = ["terrorism", "violence", "illegal_goods", "fraud", "spam", "intellectual_property", "csam", "other"]


def _reexec_in_venv() -> None:
    try:
        import django  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve():
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
        raise SystemExit("bench/blocklist.py needs the project's venv (make venv), with Django and psycopg") from None


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"dbname=postgres host={PG_HOST}", autocommit=True) as conn:
        conn.execute(sql)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


# --- Data -------------------------------------------------------------------------------------


def load(entities: int, blocked: int) -> dict[str, float]:
    """COPY the entities, one block decision and one BlocklistChange per blocked entity."""
    from django.db import connection
    from django.utils import timezone

    every = max(entities // blocked, 1)
    now = timezone.now()
    timings: dict[str, float] = {}
    with connection.cursor() as cursor:
        raw = cursor.cursor
        started = time.perf_counter()
        columns = "public_id, url, kind, status, lookalike, first_seen, last_seen, report_count"
        with raw.copy(f"COPY reports_entity ({columns}) FROM STDIN") as copy:
            for i in range(entities):
                status = "blocked" if i % every == 0 and i // every < blocked else "active"
                copy.write_row(
                    (uuid.uuid4(), f"https://t.me/bench_{i:07d}", "channel_or_group", status, False, now, now, 1)
                )
        timings[f"COPY {entities:,} entities"] = time.perf_counter() - started

        started = time.perf_counter()
        cursor.execute("SELECT id FROM reports_entity WHERE status = 'blocked' ORDER BY id")
        blocked_ids = [row[0] for row in cursor.fetchall()]
        columns = "id, public_id, kind, entity_id, category, decline_reason, statement, created_at"
        with raw.copy(f"COPY moderation_decision ({columns}) FROM STDIN") as copy:
            for n, entity_id in enumerate(blocked_ids, start=1):
                at = now - timedelta(seconds=len(blocked_ids) - n + 1000)
                copy.write_row(
                    (n, uuid.uuid4(), "block", entity_id, CATEGORIES[n % len(CATEGORIES)], "", "Bench block.", at)
                )
        cursor.execute("SELECT setval(pg_get_serial_sequence('moderation_decision', 'id'), %s)", [len(blocked_ids)])
        with raw.copy(
            "COPY moderation_blocklistchange (entity_id, kind, category, decision_id, created_at) FROM STDIN"
        ) as copy:
            for n, entity_id in enumerate(blocked_ids, start=1):
                at = now - timedelta(seconds=len(blocked_ids) - n + 1000)
                copy.write_row((entity_id, "block", CATEGORIES[n % len(CATEGORIES)], n, at))
        timings[f"COPY {len(blocked_ids):,} decisions and blocklist changes"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("ANALYZE")
        timings["ANALYZE"] = time.perf_counter() - started
    return timings


def make_changes(count: int) -> tuple[int, float]:
    """`count` blocks and unblocks through the real actions; returns the cursor id before them."""
    from moderation.actions import Actor, do_block_entity, do_unblock_entity
    from moderation.models import BlocklistChange
    from reports.models import Entity

    before = BlocklistChange.objects.order_by("-id").values_list("id", flat=True).first() or 0
    actor = Actor(None, label="api:bench")
    to_unblock = list(Entity.objects.filter(status="blocked").order_by("id")[: (count + 1) // 2])
    to_block = list(Entity.objects.filter(status="active").order_by("id")[: count // 2])
    started = time.perf_counter()
    for n in range(count):
        if n % 2 == 0:
            do_unblock_entity(to_unblock[n // 2], statement="Bench unblock.", actor=actor, authorized=True)
        else:
            do_block_entity(to_block[n // 2], category="spam", statement="Bench block.", actor=actor)
    return before, time.perf_counter() - started


# --- HTTP -------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    size: int
    first_byte: float
    total: float
    tail: bytes
    body: bytes


def fetch(port: int, path: str, headers: dict[str, str], *, keep: bool = False) -> Answer:
    """One GET on a new connection, reading the body as a stream; kept only if asked (`keep`)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        first_byte = time.perf_counter() - started
        size, tail, kept = 0, b"", []
        while chunk := response.read(256 * 1024):
            size += len(chunk)
            tail = (tail + chunk)[-4096:]
            if keep:
                kept.append(chunk)
        total = time.perf_counter() - started
        return Answer(response.status, dict(response.getheaders()), size, first_byte, total, tail, b"".join(kept))
    finally:
        conn.close()


def wait_until_up(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"runserver exited early:\n{log.read_text()[-3000:]}")
        try:
            fetch(port, "/api/v1/not-an-endpoint/", {})
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"runserver did not answer within 60 s:\n{log.read_text()[-3000:]}")


@contextmanager
def runserver(env: dict[str, str], workdir: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    log = workdir / "runserver.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(port, server, log)
        yield port, server.pid
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(samples)}


# --- Main -------------------------------------------------------------------------------------


def main() -> None:
    _reexec_in_venv()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--blocked", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=100, help="changes each incremental poll returns")
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if not 0 < args.blocked <= args.entities or args.changes > 1000:
        parser.error("need 0 < --blocked <= --entities and --changes <= 1000 (the API's page limit)")

    url = f"postgres:///{DB_NAME}?host={PG_HOST}"
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "abusedesk.settings", "DEBUG": "false"})
    sys.path.insert(0, str(ROOT))
    pg_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    pg_admin(f'CREATE DATABASE "{DB_NAME}"')
    try:
        with tempfile.TemporaryDirectory(prefix="bench-blocklist-") as tmp:
            os.environ["ABUSEDESK_VAR_DIR"] = tmp
            run(args, url, Path(tmp))
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"kept database {DB_NAME}")
        else:
            pg_admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def run(args: argparse.Namespace, url: str, workdir: Path) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from moderation.actions import Actor
    from moderation.integrations.api import encode_cursor
    from moderation.integrations.apikeys import do_create_api_key

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.perf_counter() - started:.1f} s", flush=True)
    timings = load(args.entities, args.blocked)
    for what, seconds in timings.items():
        print(f"{what}: {seconds:.1f} s", flush=True)
    cursor_id, change_seconds = make_changes(args.changes)
    print(f"made {args.changes} changes through the actions in {change_seconds:.2f} s", flush=True)
    _, plaintext = do_create_api_key("bench", scopes=["blocklist"], actor=Actor(None, label="bench"))
    auth = {"Authorization": f"Bearer {plaintext}"}

    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "false",
        # runserver serves each request in a new thread: persistent connections would pile up.
        "DB_CONN_MAX_AGE": "0",
        "ABUSEDESK_API_REQUESTS_PER_MINUTE": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    rows: list[tuple[str, str]] = []
    with runserver(env, workdir) as (port, pid):
        for _ in range(5):
            fetch(port, f"/api/v1/blocklist/?since={encode_cursor(cursor_id)}", auth)
        rss_before, hwm_before = memory_kb(pid)
        exports = [fetch(port, "/api/v1/blocklist/", auth) for _ in range(2)]
        rss_after, hwm_after = memory_kb(pid)
        export = exports[0]
        tail = json.loads(b"{" + export.tail.rsplit(b"]", 1)[1].lstrip(b","))
        assert export.status == 200 and tail["count"] == args.blocked, (export.status, tail)
        not_modified = fetch(port, "/api/v1/blocklist/", {**auth, "If-None-Match": export.headers["ETag"]})
        assert not_modified.status == 304

        poll_path = f"/api/v1/blocklist/?since={encode_cursor(cursor_id)}&limit={args.changes}"
        first = fetch(port, poll_path, auth, keep=True)
        assert first.status == 200 and len(json.loads(first.body)["changes"]) == args.changes, first.status
        polls = [fetch(port, poll_path, auth).total * 1000 for _ in range(args.polls)]
        cached = [
            fetch(port, poll_path, {**auth, "If-None-Match": first.headers["ETag"]}).total * 1000
            for _ in range(args.polls)
        ]

    rows.append(("full export: rows, body size", f"{tail['count']:,} rows, {export.size / 1e6:.1f} MB"))
    rows.append(
        (
            "full export: time (1st / 2nd run)",
            f"{exports[0].total:.2f} s / {exports[1].total:.2f} s (first byte {exports[0].first_byte * 1000:.0f} ms)",
        )
    )
    rows.append(("full export: throughput", f"{tail['count'] / exports[0].total:,.0f} rows/s"))
    rows.append(("server RSS before / after 2 exports", f"{rss_before / 1024:.0f} MB / {rss_after / 1024:.0f} MB"))
    rows.append(
        (
            "server peak RSS (VmHWM) before / after",
            f"{hwm_before / 1024:.0f} MB / {hwm_after / 1024:.0f} MB "
            f"(+{(hwm_after - hwm_before) / 1024:.1f} MB for a {export.size / 1e6:.0f} MB body)",
        )
    )
    rows.append(("export with If-None-Match", f"{not_modified.status} in {not_modified.total * 1000:.1f} ms"))
    for label, samples in ((f"poll, {args.changes} changes", polls), ("poll, If-None-Match -> 304", cached)):
        cuts = percentiles(samples)
        rows.append(
            (
                f"{label} (n={len(samples)})",
                "p50 {p50:.1f} / p95 {p95:.1f} / p99 {p99:.1f} / max {max:.1f} ms".format(**cuts),
            )
        )
    p95 = percentiles(polls)["p95"]

    print()
    print(
        f"Blocklist API on PostgreSQL: {args.entities:,} entities, {args.blocked:,} blocked; "
        "manage.py runserver (DEBUG off, one new connection per request) on loopback"
    )
    width = max(len(label) for label, _ in rows)
    print(f"| {'measurement'.ljust(width)} | result")
    print(f"|-{'-' * width}-|-------")
    for label, value in rows:
        print(f"| {label.ljust(width)} | {value}")
    verdict = "met" if p95 < TARGET_P95_MS else "MISSED"
    print(f"\nTarget p95 < {TARGET_P95_MS:.0f} ms for a poll with {args.changes} changes: {verdict} ({p95:.1f} ms).")


if __name__ == "__main__":
    main()
