"""`manage.py seed --reports N`: realistic desk data at scale (see moderation.seeding)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from moderation.seeding import SeedError, SeedOptions, describe, seed


def _positive(value: str) -> int:
    number = int(value.replace("_", "").replace(",", ""))
    if number < 1:
        raise ValueError("must be at least 1")
    return number


class Command(BaseCommand):
    help = (
        "Write realistic reports, cases, reporters and entities at scale into an empty desk: campaigns "
        "with thousands of reports, a long tail, a dozen languages, one case with 10,000 reports. "
        "Seeded inbound mail shares one placeholder raw file (source='seed')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reports", type=_positive, required=True, help="how many reports (e.g. 1000000)")
        parser.add_argument("--cases", type=_positive, help="how many cases (default: reports / 8)")
        parser.add_argument(
            "--reporters", type=_positive, help="how many reporters to draw from (default: reports / 5)"
        )
        parser.add_argument("--entities", type=_positive, help="how many entities to draw from (default: 1.2 per case)")
        parser.add_argument("--batch", type=_positive, default=5000, help="rows per transaction (default 5000)")
        parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same data")
        parser.add_argument(
            "--decisions",
            type=int,
            help="open cases to block or decline through the real actions (default: reports / 3000, at most 300)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        seed_options = SeedOptions(
            reports=options["reports"],
            cases=options["cases"],
            reporters=options["reporters"],
            entities=options["entities"],
            batch=options["batch"],
            seed=options["seed"],
            sample_decisions=options["decisions"],
        )
        try:
            result = seed(seed_options, say=self.stdout.write)
        except SeedError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(describe(result)))
