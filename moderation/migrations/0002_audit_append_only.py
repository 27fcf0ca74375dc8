from __future__ import annotations

from django.db import migrations

from moderation.audit import triggers as audit_triggers


def install(apps, schema_editor):
    audit_triggers.install(schema_editor.connection)


def drop(apps, schema_editor):
    audit_triggers.drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("moderation", "0001_initial")]
    operations = [migrations.RunPython(install, drop)]
