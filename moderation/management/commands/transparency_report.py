"""The DSA Art. 15/24 figures for a period: `python manage.py transparency_report --from DATE --to DATE`.

Fields and definitions: moderation/transparency/report.py (and the README's Transparency section).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from moderation.transparency import report


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Write the Art. 15/24 transparency figures of a period (notices by category and source, actions by "
        "type, median time to act) as JSON or CSV."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="since", required=True, help="first day, YYYY-MM-DD (inclusive)")
        parser.add_argument("--to", dest="until", required=True, help="last day, YYYY-MM-DD (inclusive)")
        parser.add_argument("--format", choices=["json", "csv"], default="json", help="output format (default json)")
        parser.add_argument("--output", "-o", help="write to this file instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        first, last = _date(options["since"]), _date(options["until"])
        if first > last:
            raise CommandError("--from must not be after --to")
        document = report.build(first, last)
        write = report.write_csv if options["format"] == "csv" else report.write_json
        if options["output"]:
            # newline="": the csv module writes its own line endings.
            with Path(options["output"]).open("w", encoding="utf-8", newline="") as out:
                write(document, out)
            self.stderr.write(f"wrote {options['output']}")
        else:
            write(document, self.stdout)
