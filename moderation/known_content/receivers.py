"""Receivers of intake's signals: they only queue work for the q-cluster, so connecting them costs
every process nothing (numpy and the PDQ index are loaded by the tasks, in workers)."""

from __future__ import annotations

from django_q.tasks import async_task

from reports.models import Attachment, Report


def on_report_created(sender: object, report: Report, **kwargs: object) -> None:
    """Receiver of `reports.signals.report_created`: queue matching when the report has attachments."""
    if report.case_id is not None and Attachment.objects.filter(report_id=report.pk).exists():
        async_task("moderation.tasks.match_known_content", report.pk, task_name=f"match-report-{report.pk}")


def on_attachments_hashed(sender: object, attachment_ids: list[int], **kwargs: object) -> None:
    """Receiver of `reports.signals.attachments_hashed`."""
    async_task("moderation.tasks.match_hashed_attachments", attachment_ids, task_name="match-hashed-attachments")
