from __future__ import annotations

from django.apps import AppConfig


class AbusedeskConfig(AppConfig):
    name = "abusedesk"
    verbose_name = "abusedesk"
