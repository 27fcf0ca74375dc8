from __future__ import annotations

from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = "Moderation"

    def ready(self) -> None:
        from anymail.signals import tracking

        from moderation.enforcement import on_blocklist_changed
        from moderation.replies import acknowledge_new_report
        from moderation.signals import blocklist_changed
        from moderation.tracking import handle_tracking
        from reports.signals import report_created

        tracking.connect(handle_tracking, dispatch_uid="moderation.tracking")
        report_created.connect(acknowledge_new_report, dispatch_uid="moderation.acknowledge")
        blocklist_changed.connect(on_blocklist_changed, dispatch_uid="moderation.enforcement")
