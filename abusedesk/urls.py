from __future__ import annotations

from anymail import urls as anymail_urls
from django.contrib import admin
from django.urls import include, path
from django.urls.resolvers import URLPattern

from reports.webhooks import webhook_view


def _webhook_patterns() -> list[URLPattern]:
    """django-anymail's routes, each behind the desk's gate (reports.webhooks)."""
    return [
        URLPattern(p.pattern, webhook_view(p.callback, p.name or ""), p.default_args, p.name)
        for p in anymail_urls.urlpatterns
        if isinstance(p, URLPattern)
    ]


urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/anymail/", include((_webhook_patterns(), "anymail"))),
    path("api/v1/", include("abusedesk.api_urls")),
    path("transparency/", include("moderation.transparency.urls", namespace="transparency")),
    path("", include("moderation.urls", namespace="moderation")),
]
