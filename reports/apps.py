from __future__ import annotations

import sys

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports and intake"

    def ready(self) -> None:
        # Connects the anymail inbound receiver. The webhook modules themselves are patched when
        # the URLconf imports them (abusedesk/urls.py): importing them here would cost every
        # process, an MTA pipe's `ingest_mail` included, 0.4 s for the svix and boto3 SDKs.
        from reports import intake  # noqa: F401

        if sys.argv[1:2] == ["qcluster"]:
            # Workers fork from the cluster's main process: loaded here once, the 73 MB language
            # model is shared by every worker instead of loaded by each (0.7 s of CPU a time),
            # and again after every recycle.
            from reports.language import preload

            preload()
