"""Indexes that keep the moderator queue, its search and a storm case's page fast at a million reports.

The two B-tree indexes are in Report.Meta. On PostgreSQL three GIN indexes follow, outside the
migration state because SQLite cannot build them (SQLite keeps its simpler LIKE search):

- (case_id, report text as a tsvector), with btree_gin: "does this case have a report matching the
  words?" is one index probe, and "which reports match?" uses the same index. The expression must
  stay identical to the one reports.queries searches with (config "english").
- Trigrams of the upper-cased entity URL and reporter address, with pg_trgm: the substring search
  (`icontains`, which Django writes as UPPER(col) LIKE UPPER(...)) stops scanning both tables.

Building them on a million reports takes about a minute and locks writes to those tables meanwhile.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models
from django.db.models import F

SEARCH_CONFIG = "english"
# Written out: Django renders an OpClass inside an index expression as invalid SQL here.
TRIGRAM_INDEXES = [
    ("entity_url_trgm", "reports_entity", "url"),
    ("reporter_email_trgm", "reports_reporter", "email"),
]


def _search_index():
    return GinIndex(F("case"), SearchVector("subject", "text", config=SEARCH_CONFIG), name="report_case_search")


def add_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.add_index(apps.get_model("reports", "report"), _search_index())
    for name, table, column in TRIGRAM_INDEXES:
        schema_editor.execute(f'CREATE INDEX "{name}" ON "{table}" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)')


def remove_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.remove_index(apps.get_model("reports", "report"), _search_index())
    for name, _table, _column in TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("reports", "0002_sweep_schedule")]

    operations = [
        migrations.AddIndex(
            model_name="report",
            index=models.Index(fields=["case", "received_at", "id", "language"], name="report_case_timeline"),
        ),
        migrations.AddIndex(
            model_name="report",
            index=models.Index(fields=["language", "case"], name="report_language_case"),
        ),
        migrations.RunPython(add_postgres_indexes, remove_postgres_indexes),
    ]
