#!/usr/bin/env python3
"""Known-content benchmark: matching one attachment's PDQ hash against 1,000,000 banked hashes.

    .venv/bin/python bench/known_content.py                      # in memory: 1,000,000 hashes, 3 runs
    .venv/bin/python bench/known_content.py --hashes 100000      # a quick run
    .venv/bin/python bench/known_content.py --db                 # also through PostgreSQL, as a worker does

In memory, each run generates the hashes (seeded), builds moderation.known_content.index.PdqIndex
(multi-index hashing over 16 chunks of 16 bits) and times `search()` for `--queries` queries of
three kinds: a random hash (no match, the common case), a banked hash with 8 bits flipped, and one
with 31 bits flipped (the farthest that must still match). For comparison it times a vectorised
full scan (numpy XOR and popcount over every hash) on `--scan-queries` queries. Two data sets:
`uniform` (independent random hashes) and `clustered` (families of near-duplicates, 100 hashes
within 12 bits of each of N/100 originals, as a bank of re-encoded copies looks), where chunk
buckets are uneven. Build time is wall-clock; memory is the index's arrays (nbytes) and the
tracemalloc peak while building (numpy's allocations are traced).

With `--db`, the hashes go into a fresh PostgreSQL database `abusedesk_i12hashes_bench` as one
bank (COPY), and the run times what a q-cluster worker does: `build_index()` (read every PDQ row
and build), the per-match check that the cached index is current (one query over the banks), and
`find_matches()` for one attachment (the exact MD5/SHA-256 lookup plus the PDQ search).
Percentiles are per query; each table shows the median over `--runs` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

# bench/queue.py is named like the standard library's `queue`: keep this folder off the import path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
if Path(sys.executable).resolve() != (ROOT / ".venv/bin/python").resolve() and (ROOT / ".venv/bin/python").exists():
    os.execv(str(ROOT / ".venv/bin/python"), [str(ROOT / ".venv/bin/python"), __file__, *sys.argv[1:]])

import numpy as np  # noqa: E402

PG_HOST = "/var/run/postgresql"
DB_NAME = "abusedesk_i12hashes_bench"


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.array(samples) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def _flip(row: np.ndarray, n: int, rng: np.random.Generator) -> str:
    bits = np.unpackbits(row)
    bits[rng.choice(256, n, replace=False)] ^= 1
    return np.packbits(bits).tobytes().hex()


def _dataset(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(0, 256, (n, 32), dtype=np.uint8)
    originals = rng.integers(0, 256, (max(n // 100, 1), 32), dtype=np.uint8)
    family = np.repeat(originals, 100, axis=0)[:n]
    bits = np.unpackbits(family, axis=1)
    flips = rng.random(bits.shape) < 6 / 256  # about 6 bits of 256 flipped per copy
    return np.packbits(bits ^ flips, axis=1)


def _queries(hashes: np.ndarray, count: int, seed: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed + 1)
    picks = rng.choice(len(hashes), count, replace=False)
    return {
        "random (no match)": [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(count)],
        "banked, 8 bits off": [_flip(hashes[i], 8, rng) for i in picks],
        "banked, 31 bits off": [_flip(hashes[i], 31, rng) for i in picks],
    }


def _time_each(fn: Callable[[str], object], queries: list[str]) -> list[float]:
    out = []
    for query in queries:
        start = time.perf_counter()
        fn(query)
        out.append(time.perf_counter() - start)
    return out


def in_memory(args: argparse.Namespace) -> None:
    from moderation.known_content.index import PdqIndex

    for kind in args.data:
        runs: dict[str, list[tuple[float, float, float]]] = {}
        builds, nbytes, peaks, candidates = [], 0, [], []
        for run in range(args.runs):
            hashes = _dataset(kind, args.hashes, seed=run)
            tracemalloc.start()
            start = time.perf_counter()
            index = PdqIndex(np.arange(len(hashes)), hashes)
            builds.append(time.perf_counter() - start)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            nbytes = index.nbytes
            queries = _queries(hashes, args.queries, seed=run)
            for name, batch in queries.items():
                if name != "random (no match)":
                    assert all(index.search(q) for q in batch[:50]), f"{name}: a planted neighbour was not found"
                runs.setdefault(f"MIH, {name}", []).append(_percentiles(_time_each(index.search, batch)))
            words = hashes.view(">u8").astype(np.uint64)

            def scan(query: str, words: np.ndarray = words) -> np.ndarray:
                q = np.frombuffer(bytes.fromhex(query), dtype=">u8").astype(np.uint64)
                distances = np.bitwise_count(words ^ q).sum(axis=1)
                return np.flatnonzero(distances <= 31)

            scan_batch = queries["banked, 31 bits off"][: args.scan_queries]
            runs.setdefault("full scan (numpy popcount)", []).append(_percentiles(_time_each(scan, scan_batch)))
            candidates.append(_candidates(index, queries["random (no match)"][:200]))
        print(f"\n### {args.hashes:,} PDQ hashes, {kind}, {args.runs} runs (medians)\n")
        print("| query | p50 | p95 | p99 |\n|---|---|---|---|")
        for name, values in runs.items():
            p50, p95, p99 = (statistics.median(v[i] for v in values) for i in range(3))
            print(f"| {name} | {p50:.2f} ms | {p95:.2f} ms | {p99:.2f} ms |")
        print(
            f"\nbuild {statistics.median(builds):.2f} s; index arrays {nbytes / 1e6:.0f} MB; "
            f"traced peak while building {statistics.median(peaks) / 1e6:.0f} MB; "
            f"candidates checked per random query: median {statistics.median(candidates):,.0f}"
        )


def _candidates(index: object, queries: list[str]) -> float:
    """How many rows a query's 272 bucket look-ups hand to the distance check (median)."""
    from moderation.known_content import index as module

    counts = []
    for query in queries:
        value = np.frombuffer(bytes.fromhex(query), dtype=np.uint8).view(">u2").astype(np.int64)
        total = 0
        for k, chunk in enumerate(value):
            offsets = index.offsets[k]  # type: ignore[attr-defined]
            keys = chunk ^ module._NEIGHBOURS
            total += int((offsets[keys + 1] - offsets[keys]).sum())
        counts.append(total)
    return statistics.median(counts)


def through_postgres(args: argparse.Namespace) -> None:
    import psycopg

    with psycopg.connect(f"dbname=postgres host={PG_HOST}", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    os.environ["DATABASE_URL"] = f"postgres:///{DB_NAME}?host={PG_HOST}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusedesk.settings")
    os.environ.setdefault("DEBUG", "false")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from moderation.known_content import index as index_module
    from moderation.known_content.index import build_index, current_index
    from moderation.known_content.matching import find_matches
    from moderation.models import BankedHash, HashBank
    from reports.models import Attachment

    try:
        call_command("migrate", verbosity=0)
        hashes = _dataset("uniform", args.hashes, seed=0)
        now = timezone.now()
        bank = HashBank.objects.create(name="bench", created_at=now, updated_at=now, revision=1)
        start = time.perf_counter()
        table = BankedHash._meta.db_table
        with (
            connection.cursor() as cursor,
            cursor.connection.cursor().copy(
                f"COPY {table} (bank_id, kind, value, label, source, added_at) FROM STDIN"
            ) as copy,
        ):
            for row in hashes:
                copy.write_row((bank.pk, "pdq", row.tobytes().hex(), "bench", "bench", now))
        print(f"\n(loaded {args.hashes:,} rows in {time.perf_counter() - start:.1f} s)")
        builds, checks, matches = [], [], []
        for run in range(args.runs):
            start = time.perf_counter()
            index = build_index()
            builds.append(time.perf_counter() - start)
            index_module._cache = index_module._Cached(index_module._banks_key(), index)
            checks.append(_percentiles(_time_each(lambda _q: current_index(), ["x"] * 200)))
            queries = _queries(hashes, args.queries, seed=run)["banked, 31 bits off"]

            def match(query: str) -> object:
                attachment = Attachment(pk=1, report_id=1, md5="0" * 32, sha256="0" * 64, pdq=query, pdq_quality=90)
                found = find_matches([attachment])
                assert found, "a planted neighbour was not found"
                return found

            matches.append(_percentiles(_time_each(match, queries)))
        print(f"\n### Through PostgreSQL, {args.hashes:,} PDQ hashes in one bank, {args.runs} runs (medians)\n")
        print("| step | p50 | p95 | p99 |\n|---|---|---|---|")
        for name, values in (
            ("is the index current? (banks query)", checks),
            ("find_matches, one attachment", matches),
        ):
            p50, p95, p99 = (statistics.median(v[i] for v in values) for i in range(3))
            print(f"| {name} | {p50:.2f} ms | {p95:.2f} ms | {p99:.2f} ms |")
        print(f"\nbuild_index() from the database: {statistics.median(builds):.2f} s (median)")
    finally:
        connection.close()
        with psycopg.connect(f"dbname=postgres host={PG_HOST}", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--scan-queries", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", nargs="+", default=["uniform", "clustered"], choices=["uniform", "clustered"])
    parser.add_argument("--db", action="store_true", help="also measure through PostgreSQL")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusedesk.settings")
    if args.db:
        through_postgres(args)
        return
    import django

    django.setup()
    in_memory(args)


if __name__ == "__main__":
    main()
