#!/usr/bin/env python3
"""Realistic desk data at scale, written into the database DATABASE_URL names (see bench/seeding.py).

    .venv/bin/python bench/seed.py --reports 1000000
    DATABASE_URL=postgres:///abusedesk?host=/var/run/postgresql .venv/bin/python bench/seed.py --reports 50000

It refuses a database that holds seeded data already. Test and benchmark tooling: it is not part of
the desk's production packages.
"""

from __future__ import annotations

import os
import sys

# Run as a script, bench/ comes first on the import path, and bench/queue.py would shadow the
# standard library's queue module that psycopg imports.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse  # noqa: E402


def _positive(value: str) -> int:
    number = int(value.replace("_", "").replace(",", ""))
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Write realistic reports, cases, reporters and entities at scale into an empty desk: campaigns "
            "with thousands of reports, a long tail, a dozen languages, one case with 10,000 reports. "
            "Seeded inbound mail shares one placeholder raw file (source='seed')."
        )
    )
    parser.add_argument("--reports", type=_positive, required=True, help="how many reports (e.g. 1000000)")
    parser.add_argument("--cases", type=_positive, help="how many cases (default: reports / 8)")
    parser.add_argument("--reporters", type=_positive, help="how many reporters to draw from (default: reports / 5)")
    parser.add_argument("--entities", type=_positive, help="how many entities to draw from (default: 1.2 per case)")
    parser.add_argument("--batch", type=_positive, default=5000, help="rows per transaction (default 5000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same data")
    parser.add_argument(
        "--decisions",
        type=int,
        help="open cases to block or decline through the real actions (default: reports / 3000, at most 300)",
    )
    parser.add_argument("--migrate", action="store_true", help="run the migrations first")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusedesk.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from bench.seeding import SeedError, SeedOptions, describe, seed

    if args.migrate:
        call_command("migrate", verbosity=0)
    options = SeedOptions(
        reports=args.reports,
        cases=args.cases,
        reporters=args.reporters,
        entities=args.entities,
        batch=args.batch,
        seed=args.seed,
        sample_decisions=args.decisions,
    )
    try:
        result = seed(options)
    except SeedError as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 1
    print(describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
