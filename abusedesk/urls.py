from __future__ import annotations

from anymail import urls as anymail_urls
from django.contrib import admin
from django.urls import include, path
from django.urls.resolvers import URLPattern

from reports.intake import keep_raw_mime
from reports.webhooks import capped


def _capped_anymail_patterns() -> list[URLPattern]:
    keep_raw_mime()  # before the first request can reach a raw-MIME webhook view
    return [
        URLPattern(p.pattern, capped(p.callback), p.default_args, p.name)
        for p in anymail_urls.urlpatterns
        if isinstance(p, URLPattern)
    ]


urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/anymail/", include((_capped_anymail_patterns(), "anymail"))),
    path("api/v1/", include("abusedesk.api_urls")),
    path("", include("moderation.urls", namespace="moderation")),
]
