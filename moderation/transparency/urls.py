"""The public transparency pages, mounted at /transparency/ (404 everywhere unless published)."""

from __future__ import annotations

from django.urls import path

from moderation.transparency import public

app_name = "transparency"

urlpatterns = [
    path("", public.public_page, name="page"),
    path("feed.json", public.public_feed, name="feed"),
    path("<str:day>.json", public.public_day_feed, name="day-feed"),
    path("<str:day>/", public.public_day, name="day"),
]
