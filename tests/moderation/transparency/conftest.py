"""Three days of a small desk, built through the real intake and actions on a controlled clock.

The figures every transparency test expects are worked out by hand from this story (times UTC):

day 1, 2026-03-02
  08:00  dora (en)     t.me/old_dup_news                -> case X
  09:00  amira (en)    t.me/terror_news                 -> case C1
  10:00  jean (fr)     t.me/terror_news                 -> C1
  11:00  flagger (en)  t.me/weapons_shop_bot, verified  -> C2 (a trusted flagger's notice)
  12:00  flagger (de)  sticker set JihadFlags and t.me/second_channel, not verified -> C3
  13:00  eve (en)      names nothing                    -> C4
  15:00  mod1 blocks terror_news in C1 (terrorism)                            C1 decided after 6 h
day 2, 2026-03-03
  08:00  carlos (es)   t.me/spam_group                  -> case Y
  09:00  amira follows up on her report                 -> C1 (not a notice; reopens C1)
  09:30  mod2 merges X into Y                 Y's first report is now dora's, day 1 08:00
  10:00  an out-of-office reply                         (automatic: no case, no notice)
  11:00  mod2 blocks weapons_shop_bot in C2 (illegal goods)                   C2 after 24 h
  11:30  mod1 sets C4's category to spam; 12:00 declines C4                   C4 after 23 h
  14:00  mod2 blocks spam_group in Y (spam)                                   Y after 30 h
  15:00  omar (en)     t.me/unknown_channel             -> C7, left open and uncategorised
day 3, 2026-03-04
  09:00  mod1 blocks the sticker set and second_channel in C3 (terrorism)     C3 after 45 h
  10:00  the lead unblocks weapons_shop_bot, outside any case (as the API does)
  12:00  now
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.utils import timezone

from moderation.actions import (
    Actor,
    do_block_entity,
    do_change_case_category,
    do_decline_case,
    do_merge_cases,
    do_unblock_entity,
)
from moderation.models import DeclineReason, PolicyCategory
from reports.models import Case, Entity, InboundMessage, Reporter
from tests.mail import build_mail

DAY1, DAY2, DAY3 = (datetime(2026, 3, day, tzinfo=UTC) for day in (2, 3, 4))
NOW = DAY3.replace(hour=12)
FLAGGER = "flagger@ngo.example"
VERIFIED = {"Authentication-Results": "mx.desk.example; dmarc=pass header.from=ngo.example"}


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """The public page and the dashboard cache what they compute; ids differ from test to test."""
    cache.clear()
    yield
    cache.clear()


class Clock:
    """timezone.now() for everything the desk does while a test holds it."""

    def __init__(self) -> None:
        self.now = NOW

    def at(self, when: datetime) -> None:
        self.now = when


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    current = Clock()
    monkeypatch.setattr(timezone, "now", lambda: current.now)
    yield current


@dataclass
class History:
    cases: dict[str, Case]
    mod1: User
    mod2: User
    lead: User

    def case(self, name: str) -> Case:
        return Case.objects.get(pk=self.cases[name].pk)


def _user(username: str, role: str) -> User:
    user = User.objects.create_user(username, f"{username}@desk.example", "password-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def _entity(url: str) -> Entity:
    return Entity.objects.get(url=url)


@pytest.fixture
def history(clock: Clock, ingest: Callable[..., InboundMessage], settings: pytest.FixtureRequest) -> History:
    settings.ABUSEDESK_AUTHSERV_IDS = ["mx.desk.example"]  # type: ignore[attr-defined]
    mod1, mod2, lead = _user("mod1", "moderator"), _user("mod2", "moderator"), _user("lena", "lead")
    Reporter.objects.create(email=FLAGGER, trusted=True, first_seen=DAY1, last_seen=DAY1)
    cases: dict[str, Case] = {}

    def mail(
        when: datetime, name: str | None, body: str, sender: str, message_id: str, **extra: object
    ) -> InboundMessage:
        clock.at(when)
        message = ingest(build_mail(body, sender=sender, message_id=message_id, **extra))  # type: ignore[arg-type]
        if name:
            cases[name] = message.report.case
        return message

    def at(when: datetime) -> datetime:
        clock.at(when)
        return when

    mail(
        DAY1.replace(hour=8),
        "X",
        "Hello, the channel t.me/old_dup_news reposts the same execution videos every single day. Please block it.",
        "Dora <dora@example.org>",
        "<r0@example.org>",
    )
    mail(
        DAY1.replace(hour=9),
        "C1",
        "The channel t.me/terror_news posts execution videos and calls for attacks. Please block it as soon as possible.",
        "Amira <amira@example.org>",
        "<r1@example.org>",
    )
    joined = mail(
        DAY1.replace(hour=10),
        None,
        "Bonjour, la chaîne t.me/terror_news diffuse des vidéos d'exécutions et des appels au meurtre. "
        "Merci de la bloquer rapidement.",
        "Jean <jean@example.fr>",
        "<r2@example.fr>",
    )
    assert joined.report.case_id == cases["C1"].pk
    flagged = mail(
        DAY1.replace(hour=11),
        "C2",
        "This bot t.me/weapons_shop_bot sells rifles and ammunition to anyone who writes to it. We ask you to block it.",
        f"NGO <{FLAGGER}>",
        "<r3@ngo.example>",
        headers=VERIFIED,
    )
    assert flagged.report.from_verified
    mail(
        DAY1.replace(hour=12),
        "C3",
        "Das Stickerpaket t.me/addstickers/JihadFlags und der Kanal t.me/second_channel verherrlichen "
        "Terroranschläge. Bitte sperren Sie beide.",
        f"NGO <{FLAGGER}>",
        "<r4@ngo.example>",
    )
    mail(
        DAY1.replace(hour=13),
        "C4",
        "Somebody keeps sending me threatening messages on your platform and I do not know what to do about it anymore.",
        "Eve <eve@example.com>",
        "<r5@example.com>",
    )
    at(DAY1.replace(hour=15))
    do_block_entity(
        _entity("https://t.me/terror_news"),
        category=PolicyCategory.TERRORISM,
        statement="Execution videos.",
        actor=Actor(mod1),
        case=cases["C1"],
    )
    mail(
        DAY2.replace(hour=8),
        "Y",
        "Hola, el grupo t.me/spam_group envía la misma publicidad engañosa a miles de personas cada día. "
        "Por favor, bloquéenlo.",
        "Carlos <carlos@example.es>",
        "<r6@example.es>",
    )
    follow_up = mail(
        DAY2.replace(hour=9),
        None,
        "Thank you. The channel is still online and posted another video this morning.",
        "Amira <amira@example.org>",
        "<r1-follow@example.org>",
        headers={"In-Reply-To": "<r1@example.org>"},
    )
    assert follow_up.report.case_id == cases["C1"].pk and follow_up.report.kind == "follow_up"
    at(DAY2.replace(hour=9, minute=30))
    do_merge_cases(cases["X"], into=cases["Y"], actor=Actor(mod2))
    automatic = mail(
        DAY2.replace(hour=10),
        None,
        "I am out of the office until Monday.",
        "Out Of Office <ooo@example.net>",
        "<ooo@example.net>",
        headers={"Auto-Submitted": "auto-replied"},
    )
    assert automatic.report.kind == "automatic" and automatic.report.case_id is None
    at(DAY2.replace(hour=11))
    do_block_entity(
        _entity("https://t.me/weapons_shop_bot"),
        category=PolicyCategory.ILLEGAL_GOODS,
        statement="Sells weapons.",
        actor=Actor(mod2),
        case=cases["C2"],
    )
    at(DAY2.replace(hour=11, minute=30))
    do_change_case_category(cases["C4"], category=PolicyCategory.SPAM, actor=Actor(mod1))
    at(DAY2.replace(hour=12))
    do_decline_case(
        cases["C4"], reason=DeclineReason.NOT_ENOUGH_INFORMATION, statement="Nothing to act on.", actor=Actor(mod1)
    )
    at(DAY2.replace(hour=14))
    do_block_entity(
        _entity("https://t.me/spam_group"),
        category=PolicyCategory.SPAM,
        statement="Spam.",
        actor=Actor(mod2),
        case=cases["Y"],
    )
    mail(
        DAY2.replace(hour=15),
        "C7",
        "The channel t.me/unknown_channel shares something strange, could you please have a look at it when possible.",
        "Omar <omar@example.net>",
        "<r8@example.net>",
    )
    at(DAY3.replace(hour=9))
    for url in ("https://t.me/addstickers/jihadflags", "https://t.me/second_channel"):
        do_block_entity(
            _entity(url),
            category=PolicyCategory.TERRORISM,
            statement="Glorifies attacks.",
            actor=Actor(mod1),
            case=cases["C3"],
        )
    at(DAY3.replace(hour=10))
    do_unblock_entity(
        _entity("https://t.me/weapons_shop_bot"), statement="Shop closed its weapons section.", actor=Actor(lead)
    )
    clock.at(NOW)
    return History(cases=cases, mod1=mod1, mod2=mod2, lead=lead)
