from __future__ import annotations

import sys

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports and intake"

    def ready(self) -> None:
        from reports import intake  # connects the anymail inbound receiver

        intake.keep_raw_mime()

        if sys.argv[1:2] == ["qcluster"]:
            # Workers fork from the cluster's main process: loaded here once, the 73 MB language
            # model is shared by every worker instead of loaded by each (0.7 s of CPU a time),
            # and again after every recycle.
            from reports.language import preload

            preload()
