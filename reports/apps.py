from __future__ import annotations

import sys

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports and intake"

    def ready(self) -> None:
        if sys.argv[1:2] == ["qcluster"]:
            # Workers fork from the cluster's main process: loaded here once, the 73 MB language
            # model is shared by every worker instead of loaded by each (0.7 s of CPU a time),
            # and again after every recycle. So are anymail's webhook views with the svix and
            # boto3 SDKs (0.4 s), which the drain needs to unpack webhook deliveries; no other
            # process imports them before its URLconf loads, an MTA pipe's `ingest_mail` included.
            from reports.intake import inbound_views, keep_raw_mime
            from reports.language import preload

            preload()
            inbound_views()
            keep_raw_mime()
