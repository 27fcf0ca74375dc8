"""The transparency rollup (moderation/transparency/rollup.py) and its 5-minute refresh schedule."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


SCHEDULE = "abusedesk: refresh transparency figures"


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE,
        defaults={"func": "moderation.tasks.refresh_transparency", "schedule_type": "I", "minutes": 5, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('moderation', '0014_known_content'),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ('reports', '0006_report_verification_and_quarantine'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RollupState',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ('refreshed_at', models.DateTimeField(blank=True, null=True)),
                ('days_recomputed', models.PositiveIntegerField(default=0)),
                ('cases_recomputed', models.PositiveIntegerField(default=0)),
                ('backlog', models.JSONField(default=dict)),
                ('times', models.JSONField(default=dict)),
            ],
        ),
        migrations.CreateModel(
            name='DailyCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('metric', models.CharField(choices=[('reports', 'reports'), ('cases', 'cases'), ('blocks', 'blocks'), ('unblocks', 'unblocks'), ('declines', 'declines')], max_length=16)),
                ('dimension', models.CharField(blank=True, default='', max_length=32)),
                ('value', models.CharField(blank=True, default='', max_length=64)),
                ('count', models.PositiveIntegerField()),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('metric', 'dimension', 'day', 'value'), name='daily_count_unique')],
            },
        ),
        migrations.CreateModel(
            name='FirstDecision',
            fields=[
                ('case', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='reports.case')),
                ('kind', models.CharField(choices=[('block', 'block'), ('unblock', 'unblock'), ('decline', 'decline')], max_length=10)),
                ('category', models.CharField(blank=True, default='', max_length=32)),
                ('first_report_at', models.DateTimeField()),
                ('decided_at', models.DateTimeField()),
                ('seconds', models.PositiveBigIntegerField(help_text="From the case's first report to this decision.")),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('decision', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='moderation.decision')),
            ],
            options={
                'indexes': [models.Index(fields=['decided_at', 'seconds', 'kind', 'category', 'actor'], name='first_decision_period')],
            },
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
