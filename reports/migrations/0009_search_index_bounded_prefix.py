"""The full-text index of reports covers the first 100,000 characters of a report's text.

PostgreSQL refuses a tsvector over 1 MB ("string is too long for tsvector"), and the index of
migration 0003 took the whole text, up to the 1,000,000 characters a report keeps: a mail of
about 100,000 distinct words could not be inserted, so it never became a report. A character of
text costs at most about 6 bytes of tsvector (one-character words, each a distinct lexeme with
its position, measured), so 100,000 characters stay under 650 KB. The expression must stay
identical to reports.queries' search document, config included.

Rebuilding the index on a million reports takes about a minute and locks writes to the table.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations
from django.db.models import F
from django.db.models.functions import Left

SEARCH_CONFIG = "english"
SEARCH_TEXT_CHARS = 100_000


def _old_index():
    return GinIndex(F("case"), SearchVector("subject", "text", config=SEARCH_CONFIG), name="report_case_search")


def _new_index():
    return GinIndex(
        F("case"),
        SearchVector("subject", Left("text", SEARCH_TEXT_CHARS), config=SEARCH_CONFIG),
        name="report_case_search",
    )


def bound_the_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    report = apps.get_model("reports", "report")
    schema_editor.remove_index(report, _old_index())
    schema_editor.add_index(report, _new_index())


def unbound_the_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    report = apps.get_model("reports", "report")
    schema_editor.remove_index(report, _new_index())
    schema_editor.add_index(report, _old_index())


class Migration(migrations.Migration):
    dependencies = [("reports", "0008_inbound_converted_from")]

    operations = [migrations.RunPython(bound_the_index, unbound_the_index)]
