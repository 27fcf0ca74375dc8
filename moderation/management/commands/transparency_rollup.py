"""Bring the transparency figures up to date now: `python manage.py transparency_rollup [--rebuild]`.

The q-cluster does it every 5 minutes; this is for a desk without one, after an import, or to
recompute every day (`--rebuild`, which counts again from whatever the tables hold now).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from moderation.transparency.rollup import refresh


class Command(BaseCommand):
    help = "Recompute the dashboard's and the public page's daily figures changed since the last run (or all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="recompute every day, not only the changed ones")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        result = refresh(rebuild=options["rebuild"])
        what = "rebuilt" if result.full else "refreshed"
        self.stdout.write(
            f"{what}: {result.days} days and {result.cases} cases recomputed in {time.monotonic() - started:.1f} s"
        )
