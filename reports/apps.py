from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports and intake"

    def ready(self) -> None:
        from reports import intake  # noqa: F401  (connects the anymail inbound receiver)
