from __future__ import annotations

from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = "Moderation"

    def ready(self) -> None:
        from anymail.signals import tracking

        from moderation.integrations.enforcement import on_blocklist_changed
        from moderation.known_content.receivers import on_attachments_hashed, on_report_created
        from moderation.replies.acknowledge import acknowledge_new_report
        from moderation.replies.tracking import handle_tracking
        from moderation.signals import blocklist_changed
        from reports.signals import attachments_hashed, report_created

        tracking.connect(handle_tracking, dispatch_uid="moderation.tracking")
        report_created.connect(acknowledge_new_report, dispatch_uid="moderation.acknowledge")
        report_created.connect(on_report_created, dispatch_uid="moderation.known_content")
        attachments_hashed.connect(on_attachments_hashed, dispatch_uid="moderation.known_content")
        blocklist_changed.connect(on_blocklist_changed, dispatch_uid="moderation.integrations.enforcement")
