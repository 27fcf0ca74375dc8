"""The public transparency page and JSON feed: blocks of public channels, bots and sticker sets per day.

Off unless the operator sets ABUSEDESK_TRANSPARENCY_PUBLIC (every URL here is a 404 until then).
Counts only, from the rollup: no reporter, moderator, statement or report text is ever read here.
Entity names appear only with ABUSEDESK_TRANSPARENCY_PUBLISH_NAMES as well, and then only of
public channels, bots and sticker sets that are blocked still.

No login, no session, no CSRF token (nothing here accepts input beyond a period); the computed
figures are cached for ABUSEDESK_TRANSPARENCY_CACHE_SECONDS and every client address is held to
ABUSEDESK_TRANSPARENCY_REQUESTS_PER_MINUTE, counted in the default cache (so, like the API's
throttle, shared between web processes only with a shared cache such as Redis).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.html import format_html
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from moderation.models import PolicyCategory
from moderation.transparency import charts, queries, rollup
from moderation.transparency.forms import PeriodForm, with_default_period

NAMES_PER_PAGE = 1000
KIND_LABELS = {kind.value: str(kind.label) for kind in queries.PUBLIC_KINDS}


def _category_labels() -> dict[str, str]:
    return {"": _("uncategorised"), **{value: str(label) for value, label in PolicyCategory.choices}}


def _require_enabled() -> None:
    if not settings.ABUSEDESK_TRANSPARENCY_PUBLIC:
        raise Http404("the transparency page is not published")


def _too_many(request: HttpRequest) -> HttpResponse | None:
    """A 429 once this client address has made more than the allowed requests this minute."""
    address = get_client_ip_address(request) or "unknown"
    now = int(timezone.now().timestamp())
    window = now // 60
    key = f"abusedesk:transparency:rate:{address}:{window}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:
        # Expired between add() and incr(): this request starts a new count.
        cache.set(key, 1, timeout=120)
        count = 1
    if count <= settings.ABUSEDESK_TRANSPARENCY_REQUESTS_PER_MINUTE:
        return None
    response = HttpResponse(_("Too many requests: try again in a minute."), status=429, content_type="text/plain")
    response["Retry-After"] = str(60 - now % 60)
    return response


def _cached(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, public=True, max_age=settings.ABUSEDESK_TRANSPARENCY_CACHE_SECONDS)
    return response


def _payload(first: date, last: date) -> dict[str, Any]:
    """The feed's document for the period (computed once per cache period)."""
    names = settings.ABUSEDESK_TRANSPARENCY_PUBLISH_NAMES
    key = f"abusedesk:transparency:public:{first}:{last}:{int(names)}:{get_language()}"
    found = cache.get(key)
    if found is not None:
        return found
    refreshed = rollup.refreshed_at()
    days = []
    for day in queries.public_days(first, last):
        entry: dict[str, Any] = {
            "date": day.day.isoformat(),
            "blocked": {kind: day.blocks.get(kind, {}) for kind in KIND_LABELS},
            "total": day.total,
            "unblocked": day.unblocks,
        }
        if names:
            entry["names"] = reverse("transparency:day-feed", args=[day.day.isoformat()])
        days.append(entry)
    payload = {
        "period": {"from": first.isoformat(), "to": last.isoformat()},
        "time_zone": settings.TIME_ZONE,
        "figures_as_of": refreshed.isoformat() if refreshed else None,
        "kinds": KIND_LABELS,
        "categories": {value: str(label) for value, label in PolicyCategory.choices},
        "days": days,
    }
    cache.set(key, payload, timeout=settings.ABUSEDESK_TRANSPARENCY_CACHE_SECONDS)
    return payload


@require_GET
def public_page(request: HttpRequest) -> HttpResponse:
    _require_enabled()
    if limited := _too_many(request):
        return limited
    form = PeriodForm(with_default_period(request.GET))
    first, last = form.period()
    payload = _payload(first, last)
    days = list(reversed(payload["days"]))
    categories = _category_labels()
    per_category: dict[str, list[int]] = {}
    for n, day in enumerate(days):
        for by_category in day["blocked"].values():
            for category, count in by_category.items():
                per_category.setdefault(category, [0] * len(days))[n] += count
    ordered = sorted(per_category.items(), key=lambda item: (-sum(item[1]), item[0]))
    chart = charts.stacked_bars(
        _("Blocked per day, by category"),
        [day["date"][5:] for day in days],
        ordered,
        label_of=categories,
    )
    shown = [category for category, _counts in ordered]
    names = settings.ABUSEDESK_TRANSPARENCY_PUBLISH_NAMES
    rows = []
    for n, day in reversed(list(enumerate(days))):
        header = day["date"]
        if names and day["total"]:
            header = format_html('<a href="{}">{}</a>', reverse("transparency:day", args=[day["date"]]), day["date"])
        values = [
            *(per_category[category][n] for category in shown),
            day["total"],
            *(sum(day["blocked"][kind].values()) for kind in KIND_LABELS),
            day["unblocked"],
        ]
        rows.append((header, values))
    context = {
        "desk_name": settings.ABUSEDESK_NAME,
        "form": form,
        "first": first,
        "last": last,
        "figures_as_of": rollup.refreshed_at(),
        "chart": chart,
        "category_columns": [categories.get(category, category) for category in shown],
        "kind_columns": list(KIND_LABELS.values()),
        "rows": rows,
        "body": charts.table_body(rows),
        "total": sum(day["total"] for day in days),
        "names": names,
        "feed_query": f"since={first.isoformat()}&until={last.isoformat()}",
        "cache_minutes": max(1, settings.ABUSEDESK_TRANSPARENCY_CACHE_SECONDS // 60),
    }
    return _cached(render(request, "transparency/public.html", context))


@require_GET
def public_feed(request: HttpRequest) -> HttpResponse:
    _require_enabled()
    if limited := _too_many(request):
        return limited
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": {"code": "invalid_period", "fields": form.errors.get_json_data()}}, status=400)
    return _cached(JsonResponse(_payload(form.cleaned_data["since"], form.cleaned_data["until"])))


def _day_or_404(day: str) -> date:
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise Http404("not a date") from None
    if parsed > timezone.localdate():
        raise Http404("a day to come")
    return parsed


def _names(request: HttpRequest, day: str) -> tuple[date, list[queries.BlockedName], int | None]:
    if not settings.ABUSEDESK_TRANSPARENCY_PUBLISH_NAMES:
        raise Http404("names are not published")
    parsed = _day_or_404(day)
    raw = request.GET.get("after", "")
    after = int(raw) if raw.isdigit() else 0
    names = queries.blocked_names(parsed, after=after, limit=NAMES_PER_PAGE + 1)
    more = names[NAMES_PER_PAGE - 1].decision_id if len(names) > NAMES_PER_PAGE else None
    return parsed, names[:NAMES_PER_PAGE], more


@require_GET
def public_day(request: HttpRequest, day: str) -> HttpResponse:
    """One day's blocked public channels, bots and sticker sets by name (only when opted in)."""
    _require_enabled()
    if limited := _too_many(request):
        return limited
    parsed, names, more = _names(request, day)
    categories = _category_labels()
    context = {
        "desk_name": settings.ABUSEDESK_NAME,
        "day": parsed,
        "names": [
            (name.url, KIND_LABELS.get(name.kind, name.kind), categories.get(name.category, name.category))
            for name in names
        ],
        "more": more,
        "cache_minutes": max(1, settings.ABUSEDESK_TRANSPARENCY_CACHE_SECONDS // 60),
    }
    return _cached(render(request, "transparency/public_day.html", context))


@require_GET
def public_day_feed(request: HttpRequest, day: str) -> HttpResponse:
    _require_enabled()
    if limited := _too_many(request):
        return limited
    parsed, names, more = _names(request, day)
    document: dict[str, Any] = {
        "date": parsed.isoformat(),
        "blocked": [{"url": name.url, "kind": name.kind, "category": name.category} for name in names],
        "next": f"{reverse('transparency:day-feed', args=[parsed.isoformat()])}?after={more}" if more else None,
    }
    return _cached(JsonResponse(document))
