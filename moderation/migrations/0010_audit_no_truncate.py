from __future__ import annotations

from django.db import migrations

from moderation.audit import triggers as audit_triggers


def install(apps, schema_editor):
    # Re-installs the whole set, which now includes the BEFORE TRUNCATE trigger on PostgreSQL.
    audit_triggers.install(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("moderation", "0009_staff_and_webhooks")]
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
