"""The public page and feed: off unless published, counts only, names only when opted in, cached, rate-limited."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from abusedesk.csp import POLICY
from moderation.actions import Actor, do_block_entity
from moderation.models import PolicyCategory
from moderation.transparency import rollup
from reports.models import Entity, Report, Reporter
from tests.moderation.transparency.conftest import DAY3, Clock, History

PERIOD = {"since": "2026-03-02", "until": "2026-03-04"}
URLS = ["/transparency/", "/transparency/feed.json", "/transparency/2026-03-03/", "/transparency/2026-03-03.json"]


@pytest.fixture
def published(history: History, settings: Any) -> History:
    settings.ABUSEDESK_TRANSPARENCY_PUBLIC = True
    rollup.refresh()
    return history


@pytest.fixture
def with_names(published: History, settings: Any) -> History:
    settings.ABUSEDESK_TRANSPARENCY_PUBLISH_NAMES = True
    return published


@pytest.mark.parametrize("url", URLS)
def test_nothing_is_public_by_default(history: History, client: Client, url: str) -> None:
    rollup.refresh()
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("url", URLS[2:])
def test_names_stay_unpublished_unless_opted_in_too(published: History, client: Client, url: str) -> None:
    assert client.get(url).status_code == 404


def test_feed_counts_blocks_of_public_kinds_per_day(published: History, client: Client) -> None:
    response = client.get("/transparency/feed.json", PERIOD)
    assert response.status_code == 200
    document = response.json()
    assert document["period"] == {"from": "2026-03-02", "to": "2026-03-04"}
    assert document["kinds"] == {"channel_or_group": "channel or group", "bot": "bot", "sticker_set": "sticker set"}
    assert document["days"] == [
        {
            "date": "2026-03-04",
            "blocked": {"channel_or_group": {"terrorism": 1}, "bot": {}, "sticker_set": {"terrorism": 1}},
            "total": 2,
            "unblocked": 1,
        },
        {
            "date": "2026-03-03",
            "blocked": {"channel_or_group": {"spam": 1}, "bot": {"illegal_goods": 1}, "sticker_set": {}},
            "total": 2,
            "unblocked": 0,
        },
        {
            "date": "2026-03-02",
            "blocked": {"channel_or_group": {"terrorism": 1}, "bot": {}, "sticker_set": {}},
            "total": 1,
            "unblocked": 0,
        },
    ]


def test_page_shows_the_same_counts_without_login(published: History, client: Client) -> None:
    response = client.get("/transparency/", PERIOD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "5 blocks in this period." in html
    context: Any = response.context
    assert context["category_columns"] == ["terrorism / violent extremism", "illegal goods", "spam"]
    assert context["kind_columns"] == ["channel or group", "bot", "sticker set"]
    # Day, then by category, all, of which channels, bots, sticker sets, then lifted.
    assert context["rows"][0] == ("2026-03-04", [2, 0, 0, 2, 1, 0, 1, 1])
    assert [values[3] for _day, values in context["rows"]] == [2, 2, 1]
    assert re.search(
        r'<th scope="row">2026-03-04</th><td class="num">2</td><td class="num">0</td><td class="num">0</td>', html
    )
    assert "<title>03-02: terrorism / violent extremism 1</title>" in html


def test_page_has_its_own_frame_and_no_script(published: History, client: Client) -> None:
    response = client.get("/transparency/")
    html = response.content.decode()
    assert response["Content-Security-Policy"] == POLICY
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert "transparency/public.css" in html and "desk.css" not in html
    assert "csrf" not in html.lower() and "Sign out" not in html
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.get("Vary", "")


def test_nothing_personal_on_the_page_or_in_the_feed(published: History, client: Client) -> None:
    text = (
        client.get("/transparency/", PERIOD).content.decode()
        + client.get("/transparency/feed.json", PERIOD).content.decode()
    )
    personal = [
        *Reporter.objects.values_list("email", flat=True),
        *Reporter.objects.values_list("display_name", flat=True),
    ]
    personal += ["mod1", "mod2", "lena", "Execution videos", "Glorifies attacks", "t.me/", "AD-0000"]
    personal += [report.subject for report in Report.objects.exclude(subject="")][:1]
    for value in filter(None, personal):
        assert value not in text, value


def test_names_when_opted_in_are_the_public_kinds_blocked_still(
    with_names: History, client: Client, clock: Clock
) -> None:
    # A person's account blocked on day 3 is neither named nor counted.
    clock.at(DAY3.replace(hour=11))
    person = Entity.objects.create(
        url="https://t.me/some_person", kind=Entity.Kind.USER, first_seen=DAY3, last_seen=DAY3
    )
    do_block_entity(person, category=PolicyCategory.OTHER, statement="Harassment.", actor=Actor(with_names.mod1))
    clock.at(DAY3.replace(hour=12))
    rollup.refresh()
    feed = client.get("/transparency/feed.json", PERIOD).json()
    assert [day["names"] for day in feed["days"]] == [
        f"/transparency/{day}.json" for day in ("2026-03-04", "2026-03-03", "2026-03-02")
    ]
    assert feed["days"][0]["total"] == 2
    day3 = client.get("/transparency/2026-03-04.json").json()
    assert day3 == {
        "date": "2026-03-04",
        "blocked": [
            {"url": "https://t.me/addstickers/jihadflags", "kind": "sticker_set", "category": "terrorism"},
            {"url": "https://t.me/second_channel", "kind": "channel_or_group", "category": "terrorism"},
        ],
        "next": None,
    }
    # The bot blocked on day 2 was unblocked on day 3: only the spam group is named.
    assert [name["url"] for name in client.get("/transparency/2026-03-03.json").json()["blocked"]] == [
        "https://t.me/spam_group"
    ]
    html = client.get("/transparency/2026-03-04/").content.decode()
    assert "<code>https://t.me/second_channel</code>" in html and "some_person" not in html
    assert '<a href="/transparency/2026-03-04/">' in client.get("/transparency/", PERIOD).content.decode()


def test_names_page_in_pages_of_a_thousand(
    with_names: History, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("moderation.transparency.public.NAMES_PER_PAGE", 1)
    first = client.get("/transparency/2026-03-04.json").json()
    assert [name["url"] for name in first["blocked"]] == ["https://t.me/addstickers/jihadflags"]
    second = client.get(first["next"]).json()
    assert ([name["url"] for name in second["blocked"]], second["next"]) == (["https://t.me/second_channel"], None)


@pytest.mark.parametrize("day", ["2026-02-30", "yesterday", "2099-01-01"])
def test_names_of_no_such_day(with_names: History, client: Client, day: str) -> None:
    assert client.get(f"/transparency/{day}.json").status_code == 404


def test_feed_refuses_a_bad_period(published: History, client: Client) -> None:
    response = client.get("/transparency/feed.json", {"since": "2026-03-04", "until": "2026-03-01"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_period"


def test_page_with_a_bad_period_shows_the_last_30_days(published: History, client: Client) -> None:
    response = client.get("/transparency/", {"since": "not a date"})
    assert response.status_code == 200
    assert "Showing the last 30 days instead." in response.content.decode()


@pytest.mark.parametrize("url", URLS[:2])
def test_public_pages_reject_post(published: History, client: Client, url: str) -> None:
    assert client.post(url).status_code == 405


def test_figures_are_cached_for_the_cache_period(published: History, client: Client, clock: Clock) -> None:
    response = client.get("/transparency/feed.json", PERIOD)
    assert response["Cache-Control"] == "public, max-age=300"
    clock.at(DAY3.replace(hour=12, minute=30))
    do_block_entity(
        Entity.objects.get(url="https://t.me/unknown_channel"),
        category=PolicyCategory.SPAM,
        statement="Spam.",
        actor=Actor(published.mod1),
    )
    rollup.refresh()
    assert client.get("/transparency/feed.json", PERIOD).json()["days"][0]["total"] == 2
    cache.clear()
    assert client.get("/transparency/feed.json", PERIOD).json()["days"][0]["total"] == 3


def test_each_address_is_rate_limited(published: History, client: Client, settings: Any) -> None:
    settings.ABUSEDESK_TRANSPARENCY_REQUESTS_PER_MINUTE = 3
    answers = [client.get("/transparency/feed.json").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = client.get("/transparency/")
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 60
    assert client.get("/transparency/feed.json", REMOTE_ADDR="192.0.2.7").status_code == 200


def test_the_limit_starts_again_the_next_minute(
    published: History, client: Client, settings: Any, clock: Clock
) -> None:
    settings.ABUSEDESK_TRANSPARENCY_REQUESTS_PER_MINUTE = 1
    assert client.get("/transparency/feed.json").status_code == 200
    assert client.get("/transparency/feed.json").status_code == 429
    clock.at(timezone.now() + timedelta(minutes=1))
    assert client.get("/transparency/feed.json").status_code == 200
