"""Realistic desk data at scale, for benchmarks and trials (`manage.py seed`).

The seeder writes the real tables (Reporter, Entity, Case and its entities, InboundMessage,
Report, ReportEntity, Attachment) in batches, each batch in its own transaction: COPY on
PostgreSQL, `bulk_create` elsewhere. It does not go through intake, and says so in the data:

- Raw mail: every seeded InboundMessage has `source="seed"` and points at one shared, tiny
  placeholder .eml stored once through `reports.rawstore`. Its `sha256` is a unique fingerprint
  of the seeded row, not the hash of that file (a million raw files would dominate the run).
- Decisions: bulk statuses (actioned, declined) and the blocked entities of actioned cases have
  no Decision row. A small sample of open cases is then blocked or declined through
  `do_block_entity`/`do_decline_case`, so Decision, BlocklistChange and the hash-chained audit log
  hold real entries.
- Every counter agrees with the rows: report counts, first/last seen and last report times are
  computed from the generated reports.

The shape is a storm-ridden abuse desk over 90 days: a few campaigns with thousands of reports
about the same channels (the largest case has exactly 10,000 reports once there are 40,000
reports or more; smaller runs scale it down to a quarter of the total), a long tail of small
cases, prolific reporters and trusted flaggers, a dozen languages, older cases mostly closed.
The same `--seed` gives the same data.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import string
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate, islice
from typing import Any, cast

from django.contrib.auth.models import Group, User
from django.db import connection, models, transaction
from django.utils import timezone

from moderation.actions import Actor, do_block_entity, do_decline_case
from moderation.models import DeclineReason, PolicyCategory
from moderation.staff import roles
from reports.models import Attachment, Case, Entity, InboundMessage, Report, ReportEntity, Reporter
from reports.rawstore import store_blob

SOURCE = "seed"
BIG_CASE_REPORTS = 10_000
# Further campaigns after the largest one, kept while all storms stay under 30% of the reports.
STORM_SIZES = (5_000, 3_000, 2_000, 1_500)
HORIZON = timedelta(days=90)
ATTACHMENT_SHARE = 0.015

# fmt: off
# (code, weight, display names, mail domains, subjects, bodies); {m} is where entities are named.
LANGUAGES: list[tuple[str, int, list[str], list[str], list[str], list[str]]] = [
    ("en", 34, ["Sarah Miller", "James Okafor", "Priya Nair", "Tom Becker", "Grace Lee", ""],
     ["gmail.example", "outlook.example", "proton.example", "ngo-watch.example"],
     ["Abuse report", "Terrorist channel", "Please block this channel", "Scam bot", "Illegal goods for sale",
      "Report: violent content", "Spam group", "Fake investment channel"],
     ["Hello, the channel {m} posts execution videos every day. Please block it.",
      "{m} is selling weapons and fake passports to anyone who writes to them.",
      "This bot {m} runs a fake crypto giveaway and has taken money from my father.",
      "The group {m} spreads extremist propaganda and recruits teenagers.",
      "Please remove {m}, it sends the same spam to thousands of people.",
      "I lost 2,000 dollars to {m}. They promised to double any deposit within a day."]),
    ("ar", 12, ["أحمد", "فاطمة", "يوسف", "مريم", ""],
     ["mail.example", "yahoo.example"],
     ["قناة إرهابية", "بلاغ عن قناة", "احتيال", "محتوى عنيف"],
     ["السلام عليكم، القناة {m} تنشر مقاطع إعدام بشكل يومي. يرجى حظرها.",
      "هذا الحساب {m} يبيع أسلحة علنًا.",
      "المجموعة {m} تنشر دعاية متطرفة وتجند الشباب."]),
    ("ru", 10, ["Иван", "Ольга", "Дмитрий", "Анна", ""],
     ["mail.example", "yandex.example"],
     ["Мошенничество", "Жалоба на канал", "Продажа наркотиков", "Экстремизм"],
     ["Этот канал {m} обманывает людей обещаниями удвоить вклад. Пожалуйста, заблокируйте.",
      "В {m} открыто продают наркотики.",
      "Группа {m} публикует призывы к насилию."]),
    ("fr", 8, ["Jean Dupont", "Camille Martin", "Léa Bernard", ""],
     ["orange.example", "free.example"],
     ["Chaîne de propagande", "Signalement", "Arnaque", "Contenu violent"],
     ["Bonjour, la chaîne {m} diffuse des vidéos d'exécutions. Merci de la bloquer.",
      "Le bot {m} vole l'argent des gens avec un faux placement.",
      "Le groupe {m} publie des appels à la violence contre une minorité."]),
    ("de", 7, ["Lena Schmidt", "Jonas Weber", "Mia Wagner", ""],
     ["web.example", "gmx.example"],
     ["Meldung eines Kanals", "Waffenhandel", "Betrug", "Gewaltverherrlichung"],
     ["Der Kanal {m} verherrlicht Terroranschläge. Bitte sperren.",
      "Über {m} werden Waffen verkauft, ohne jede Kontrolle.",
      "Der Bot {m} betrügt mit angeblichen Krypto-Gewinnen."]),
    ("es", 7, ["Carlos García", "Lucía Fernández", "Mateo López", ""],
     ["correo.example", "hotmail.example"],
     ["Canal terrorista", "Denuncia", "Estafa", "Venta ilegal"],
     ["Hola, el canal {m} publica propaganda terrorista. Por favor, bloquéenlo.",
      "El bot {m} es una estafa de inversiones.",
      "En {m} venden drogas abiertamente."]),
    ("fa", 5, ["سارا", "علی", "مریم", ""],
     ["mail.example"],
     ["گزارش کانال", "کلاهبرداری"],
     ["این کانال {m} ویدیوهای اعدام منتشر می‌کند، لطفا آن را مسدود کنید.",
      "ربات {m} از مردم کلاهبرداری می‌کند."]),
    ("tr", 5, ["Ayşe Yılmaz", "Mehmet Kaya", ""],
     ["posta.example"],
     ["Şiddet içerikli kanal", "Dolandırıcılık"],
     ["Bu kanal {m} şiddet videoları paylaşıyor, lütfen engelleyin.",
      "{m} sahte yatırım vaadiyle insanları dolandırıyor."]),
    ("id", 4, ["Budi Santoso", "Siti Rahma", ""],
     ["mail.example"],
     ["Laporan saluran", "Penipuan"],
     ["Saluran {m} menyebarkan propaganda teroris, tolong blokir.",
      "Bot {m} menipu orang dengan investasi palsu."]),
    ("uk", 4, ["Олена", "Андрій", ""],
     ["ukr.example"],
     ["Скарга на канал", "Шахрайство"],
     ["Канал {m} поширює заклики до насильства. Будь ласка, заблокуйте.",
      "Бот {m} краде гроші під виглядом допомоги."]),
    ("zh", 2, ["李伟", "王芳", ""],
     ["mail.example"],
     ["举报频道", "诈骗"],
     ["这个频道 {m} 发布处决视频，请封锁它。", "{m} 是一个投资诈骗机器人。"]),
    ("hi", 2, ["राहुल", "प्रिया", ""],
     ["mail.example"],
     ["चैनल की शिकायत", "धोखाधड़ी"],
     ["यह चैनल {m} हिंसक वीडियो फैलाता है, कृपया इसे ब्लॉक करें।", "{m} नकली निवेश का लालच देकर पैसे ठगता है।"]),
]
LANGUAGE_CODES = [lang[0] for lang in LANGUAGES]
LANGUAGE_CUM = list(accumulate(lang[1] for lang in LANGUAGES))

# Entity kinds as reports name them (weights in percent).
KINDS = [
    (Entity.Kind.CHANNEL_OR_GROUP, 58), (Entity.Kind.BOT, 12), (Entity.Kind.USER, 8), (Entity.Kind.INVITE, 8),
    (Entity.Kind.ACCOUNT, 6), (Entity.Kind.STICKER_SET, 4), (Entity.Kind.EMOJI_SET, 2), (Entity.Kind.PRIVATE_CHAT, 2),
]
NAME_WORDS = (
    "news", "truth", "free", "daily", "leaks", "crypto", "double", "profit", "shop", "market", "store", "army",
    "front", "voice", "media", "official", "real", "secret", "black", "gold", "fast", "cash", "invest", "flags",
    "brothers", "lions", "storm", "east", "west", "north", "south", "world", "war", "clips", "videos", "drops",
)
CATEGORY_WEIGHTS = [
    (PolicyCategory.TERRORISM, 30), (PolicyCategory.FRAUD, 20), (PolicyCategory.ILLEGAL_GOODS, 15),
    (PolicyCategory.SPAM, 15), (PolicyCategory.VIOLENCE, 10), (PolicyCategory.IP, 5), (PolicyCategory.OTHER, 3),
    (PolicyCategory.CSAM, 2),
]
# Status weights by the age of the case: older cases are mostly decided.
STATUS_BY_AGE = [
    (timedelta(days=2), [(Case.Status.NEW, 70), (Case.Status.OPEN, 20), (Case.Status.WAITING, 2),
                         (Case.Status.ACTIONED, 6), (Case.Status.DECLINED, 2)]),
    (timedelta(days=14), [(Case.Status.NEW, 20), (Case.Status.OPEN, 35), (Case.Status.WAITING, 15),
                          (Case.Status.ACTIONED, 20), (Case.Status.DECLINED, 10)]),
    (HORIZON * 2, [(Case.Status.OPEN, 4), (Case.Status.WAITING, 4), (Case.Status.ACTIONED, 62),
                   (Case.Status.DECLINED, 30)]),
]
PRIORITIES = [(Case.Priority.LOW, 3), (Case.Priority.NORMAL, 80), (Case.Priority.HIGH, 14), (Case.Priority.URGENT, 3)]
# fmt: on
STAFF = {
    roles.MODERATOR: [f"seed-mod-{n:02d}" for n in range(1, 13)],
    roles.LEAD: ["seed-lead-1", "seed-lead-2"],
    roles.AUDITOR: ["seed-auditor"],
}
PLACEHOLDER_EML = (
    b"From: seed@abusedesk.invalid\r\nTo: abuse@abusedesk.invalid\r\nSubject: seeded report\r\n"
    b"Message-ID: <placeholder@seed.abusedesk.invalid>\r\n\r\n"
    b"This report was generated by manage.py seed; its raw mail was never received.\r\n"
)
# A 2x2 grey PNG: every seeded image attachment shares it.
PLACEHOLDER_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000020000000208000000005773bf6c0000000e4944415478da6360606060"
    "0000000d0001e2f5d3b40000000049454e44ae426082"
)


@dataclass(frozen=True, slots=True)
class SeedOptions:
    reports: int
    cases: int | None = None
    reporters: int | None = None
    entities: int | None = None
    batch: int = 5000
    seed: int = 1
    sample_decisions: int | None = None


@dataclass(slots=True)
class SeedResult:
    reports: int = 0
    cases: int = 0
    reporters: int = 0
    entities: int = 0
    rows: int = 0
    seconds: float = 0.0
    big_case: str = ""
    decisions: int = 0


@dataclass(slots=True)
class _Plan:
    """Everything about the data except its texts, as flat lists indexed by case or report."""

    now: datetime
    big_case: int = 0
    reporter_language: list[int] = field(default_factory=list)
    case_created: list[float] = field(default_factory=list)
    case_count: list[int] = field(default_factory=list)
    case_entities: list[list[int]] = field(default_factory=list)
    case_storm: list[bool] = field(default_factory=list)
    report_case: list[int] = field(default_factory=list)
    report_time: list[float] = field(default_factory=list)
    report_reporter: list[int] = field(default_factory=list)
    report_language: list[int] = field(default_factory=list)
    # -1: the report names every entity of its case; otherwise the index of the one it names.
    report_choice: list[int] = field(default_factory=list)


class SeedError(Exception):
    pass


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _sizes(options: SeedOptions) -> tuple[list[int], int, int, int]:
    """(reports per case, reporters, entities, storm count) for the requested totals."""
    total = options.reports
    storms = [min(BIG_CASE_REPORTS, max(1, total // 4))]
    for size in STORM_SIZES:
        if storms[0] == BIG_CASE_REPORTS and sum(storms) + size <= total * 0.3:
            storms.append(size)
    rest = total - sum(storms)
    wanted = options.cases if options.cases is not None else max(1, total // 8)
    ordinary = min(max(wanted - len(storms), 1 if rest else 0), rest)
    if rest and not ordinary:
        ordinary = 1
    rng = random.Random(options.seed)
    # A long tail: lognormal weights, so the biggest ordinary case has hundreds of reports, not thousands.
    weights = [rng.lognormvariate(0, 1.3) for _ in range(ordinary)]
    extra = rest - ordinary
    scale = sum(weights) or 1.0
    counts = [1 + int(w / scale * extra) for w in weights]
    for index in rng.choices(range(ordinary), k=rest - sum(counts)) if ordinary else []:
        counts[index] += 1
    reporters = options.reporters if options.reporters is not None else max(1, total // 5)
    entities = (
        options.entities
        if options.entities is not None
        else max(len(storms) + 1, int(ordinary * 1.2) + 2 * len(storms))
    )
    return storms + counts, reporters, entities, len(storms)


def _plan(options: SeedOptions, now: datetime) -> tuple[_Plan, int, int]:
    rng = random.Random(options.seed + 1)
    sizes, n_reporters, n_entities, n_storms = _sizes(options)
    plan = _Plan(now=now)
    now_ts = now.timestamp()
    horizon = HORIZON.total_seconds()
    spans: list[float] = []
    for index, size in enumerate(sizes):
        if index == 0:
            # The big campaign: began three days ago and is still going.
            created, span = now_ts - 3 * 86400.0, 3 * 86400.0 - 300
        elif index < n_storms:
            created = now_ts - rng.uniform(1, 10) * 86400
            span = min(now_ts - created - 60, rng.uniform(6, 72) * 3600)
        else:
            created = now_ts - horizon * rng.random() ** 1.3
            span = 0.0 if size == 1 else min(now_ts - created, rng.uniform(3600, 7 * 86400))
        plan.case_created.append(created)
        spans.append(max(span, 0.0))
    order = sorted(range(len(sizes)), key=plan.case_created.__getitem__)
    plan.big_case = order.index(0)
    plan.case_created = [plan.case_created[i] for i in order]
    plan.case_count = [sizes[i] for i in order]
    plan.case_storm = [i < n_storms for i in order]
    spans = [spans[i] for i in order]

    # Entities: campaigns have their own channels (and a backup); ordinary cases take fresh ones
    # until they run out, then share, so some entities appear in several cases.
    next_fresh = 2 * n_storms
    storm_next = 0
    for storm in plan.case_storm:
        if storm:
            plan.case_entities.append([storm_next, storm_next + 1] if storm_next + 1 < n_entities else [0])
            storm_next += 2
            continue
        wanted = _weighted(rng, [(1, 78), (2, 16), (3, 6)])
        chosen: list[int] = []
        for _ in range(wanted):
            if next_fresh < n_entities:
                chosen.append(next_fresh)
                next_fresh += 1
            elif n_entities > 2 * n_storms:
                chosen.append(rng.randrange(2 * n_storms, n_entities))
        plan.case_entities.append(sorted(set(chosen)) or [rng.randrange(n_entities)])

    # Intake only knows entities and reporters that reports named: drop the ones never drawn.
    used = sorted({e for ents in plan.case_entities for e in ents})
    renumber = {old: new for new, old in enumerate(used)}
    plan.case_entities = [[renumber[e] for e in ents] for ents in plan.case_entities]
    n_entities = len(used)

    reporter_cum = list(accumulate(1 / (k + 1) ** 0.8 for k in range(n_reporters)))
    reporter_language = rng.choices(range(len(LANGUAGES)), cum_weights=LANGUAGE_CUM, k=n_reporters)
    pick = iter(rng.choices(range(n_reporters), cum_weights=reporter_cum, k=options.reports))
    for case_index, (first, count, length) in enumerate(zip(plan.case_created, plan.case_count, spans, strict=True)):
        times = sorted(first + length * rng.random() for _ in range(count - 1))
        storm = plan.case_storm[case_index]
        n_case_entities = len(plan.case_entities[case_index])
        for number, when in enumerate([first, *times]):
            # A campaign is reported by the public at large, not by the usual flaggers.
            reporter = rng.randrange(n_reporters) if storm else next(pick)
            plan.report_case.append(case_index)
            plan.report_time.append(when)
            plan.report_reporter.append(reporter)
            language = reporter_language[reporter]
            if rng.random() < 0.08:
                language = bisect.bisect_right(LANGUAGE_CUM, rng.random() * LANGUAGE_CUM[-1])
            plan.report_language.append(language)
            # The first report names every entity of its case: that is how they got there.
            plan.report_choice.append(
                -1 if number == 0 or (n_case_entities > 1 and rng.random() < 0.3) else rng.randrange(n_case_entities)
            )
    used = sorted(set(plan.report_reporter))
    renumber = {old: new for new, old in enumerate(used)}
    plan.report_reporter = [renumber[r] for r in plan.report_reporter]
    plan.reporter_language = [reporter_language[r] for r in used]
    return plan, len(used), n_entities


class _Writer:
    """Writes rows of one model in batches, one transaction per batch, reporting progress."""

    def __init__(self, batch: int, say: Callable[[str], None]) -> None:
        self.batch = batch
        self.say = say
        self.rows = 0
        self.copy = connection.vendor == "postgresql"

    def reserve_ids(self, model: type[models.Model], count: int) -> int:
        """The first of `count` consecutive primary keys nobody else will be given."""
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if self.copy:
                cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
                first = cursor.fetchone()[0]
                if count > 1:
                    cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, first + count - 1])
                return int(first)
        return (model._default_manager.aggregate(top=models.Max("pk"))["top"] or 0) + 1

    def write(
        self, model: type[models.Model], fields: Sequence[str], rows: Iterable[tuple[Any, ...]], *, total: int
    ) -> None:
        label = model.__name__
        given = [cast("models.Field[Any, Any]", model._meta.get_field(name)) for name in fields]
        # COPY bypasses the model: columns left out get the model's default here, not NULL. The
        # seeder passes every unique or per-row value itself, so one default serves all rows.
        defaults = [f for f in model._meta.concrete_fields if f not in given and not f.primary_key]
        if any(f.unique for f in defaults):
            raise SeedError(f"{label}: every unique column needs a value per row")
        filler = tuple(
            json.dumps(value) if isinstance(f, models.JSONField) and value is not None else value
            for f in defaults
            for value in [f.get_default()]
        )
        json_columns = {i for i, f in enumerate(given) if isinstance(f, models.JSONField)}
        columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in given + defaults)
        sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
        started = time.monotonic()
        done = 0
        next_report = max(total // 10, self.batch)
        iterator = iter(rows)
        while chunk := list(islice(iterator, self.batch)):
            with transaction.atomic():
                if self.copy:
                    with connection.cursor() as cursor, cursor.copy(sql) as copy:
                        for row in chunk:
                            if json_columns:
                                row = tuple(
                                    json.dumps(v) if i in json_columns and v is not None else v
                                    for i, v in enumerate(row)
                                )
                            copy.write_row((*row, *filler))
                else:
                    model._default_manager.bulk_create([model(**dict(zip(fields, row, strict=True))) for row in chunk])
            done += len(chunk)
            if done >= next_report or done == total:
                elapsed = time.monotonic() - started
                self.say(f"  {label}: {done:,}/{total:,} ({done / max(elapsed, 1e-6):,.0f} rows/s)")
                next_report = done + max(total // 10, self.batch)
        self.rows += done


def _entity_url(rng: random.Random, index: int, kind: str) -> str:
    tag = format(index, "x")
    name = f"{rng.choice(NAME_WORDS)}_{rng.choice(NAME_WORDS)}_{tag}"
    if kind == Entity.Kind.BOT:
        return f"https://t.me/{name}_bot"
    if kind == Entity.Kind.INVITE:
        return "https://t.me/+" + "".join(rng.choices(string.ascii_letters + string.digits, k=14)) + tag
    if kind == Entity.Kind.STICKER_SET:
        return f"https://t.me/addstickers/{name.lower()}"
    if kind == Entity.Kind.EMOJI_SET:
        return f"https://t.me/addemoji/{name.lower()}"
    if kind == Entity.Kind.PRIVATE_CHAT:
        return f"https://t.me/c/{1_000_000_000 + index}"
    return f"https://t.me/{name}"


def _spelling(rng: random.Random, url: str) -> tuple[str, bool]:
    """How a reporter wrote the entity, and whether it was defanged."""
    short = url.removeprefix("https://")
    roll = rng.random()
    if roll < 0.35:
        return short, False
    if roll < 0.45 and short.startswith("t.me/") and "/" not in short[5:] and not short[5:].startswith("+"):
        return "@" + short[5:], False
    if roll < 0.52:
        return short.replace("t.me", "t[.]me", 1), True
    return url, False


def _ensure_staff() -> dict[str, list[User]]:
    staff: dict[str, list[User]] = {}
    for role, usernames in STAFF.items():
        group = Group.objects.get(name=role)
        staff[role] = []
        for username in usernames:
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": True, "email": f"{username}@desk.invalid"}
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            user.groups.add(group)
            staff[role].append(user)
    return staff


def seed(options: SeedOptions, *, say: Callable[[str], None] = print) -> SeedResult:
    """Write `options.reports` reports with their cases, reporters and entities; see the module docstring."""
    if options.reports < 1:
        raise SeedError("--reports must be at least 1")
    if InboundMessage.objects.filter(source=SOURCE).exists():
        raise SeedError("this database already holds seeded data (InboundMessage source='seed'); seed a fresh one")
    started = time.monotonic()
    result = SeedResult()
    now = timezone.now()
    rng = random.Random(options.seed + 2)
    say(f"Planning {options.reports:,} reports…")
    plan, n_reporters, n_entities = _plan(options, now)
    n_cases = len(plan.case_count)
    say(
        f"  {n_cases:,} cases, {n_reporters:,} reporters, {n_entities:,} entities (planned in {time.monotonic() - started:.1f} s)"
    )
    staff = _ensure_staff()
    writer = _Writer(options.batch, say)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Losing the last seconds of a seed to a crash is harmless; waiting on every commit is not.
            cursor.execute("SET synchronous_commit TO off")

    # Aggregates every counter needs, from the plan.
    rep_count = [0] * n_reporters
    rep_first = [float("inf")] * n_reporters
    rep_last = [0.0] * n_reporters
    ent_count = [0] * n_entities
    ent_first = [float("inf")] * n_entities
    ent_last = [0.0] * n_entities
    case_last = [0.0] * n_cases
    for case_index, when, reporter, choice in zip(
        plan.report_case, plan.report_time, plan.report_reporter, plan.report_choice, strict=True
    ):
        rep_count[reporter] += 1
        rep_first[reporter] = min(rep_first[reporter], when)
        rep_last[reporter] = max(rep_last[reporter], when)
        case_last[case_index] = max(case_last[case_index], when)
        named = plan.case_entities[case_index] if choice < 0 else (plan.case_entities[case_index][choice],)
        for entity in named:
            ent_count[entity] += 1
            ent_first[entity] = min(ent_first[entity], when)
            ent_last[entity] = max(ent_last[entity], when)

    def ts(value: float) -> datetime:
        return datetime.fromtimestamp(value, tz=plan.now.tzinfo)

    # Reporters: the most prolific few are trusted flaggers; a few abuse the desk and are muted.
    say("Reporters")
    reporter_first_id = writer.reserve_ids(Reporter, n_reporters)
    reporter_rows = []
    for index in range(n_reporters):
        code, _w, names, domains, _s, _b = LANGUAGES[plan.reporter_language[index]]
        name = rng.choice(names)
        local = (name.split()[0].lower() if name.isascii() and name else "reporter") + f".{index}"
        reporter_rows.append(
            (
                reporter_first_id + index,
                f"{local}@{rng.choice(domains)}",
                name,
                code,
                rep_count[index],
                index < 20,
                rng.random() < 0.005,
                ts(rep_first[index]),
                ts(rep_last[index]),
            )
        )
    writer.write(
        Reporter,
        ["id", "email", "display_name", "language", "report_count", "trusted", "muted", "first_seen", "last_seen"],
        reporter_rows,
        total=n_reporters,
    )
    del reporter_rows

    # Cases (ids in creation order, as intake would have given them).
    say("Cases")
    case_first_id = writer.reserve_ids(Case, n_cases)
    moderators, leads = staff[roles.MODERATOR], staff[roles.LEAD]
    case_status: list[str] = []
    big_index = plan.big_case
    case_rows = []
    for index in range(n_cases):
        created, last = plan.case_created[index], case_last[index]
        age = timedelta(seconds=plan.now.timestamp() - created)
        if plan.case_storm[index]:
            status = Case.Status.OPEN
            priority = Case.Priority.URGENT if index == big_index else Case.Priority.HIGH
        else:
            status = _weighted(rng, next(weights for limit, weights in STATUS_BY_AGE if age <= limit))
            priority = _weighted(rng, PRIORITIES)
        closed = status in (Case.Status.ACTIONED, Case.Status.DECLINED)
        if closed or status in (Case.Status.OPEN, Case.Status.WAITING):
            assignee = (
                rng.choice(leads)
                if index == big_index
                else (rng.choice(moderators) if closed or rng.random() < 0.8 else None)
            )
        else:
            assignee = rng.choice(moderators) if rng.random() < 0.15 else None
        category = ""
        if status == Case.Status.ACTIONED or plan.case_storm[index] or rng.random() < 0.3:
            category = _weighted(rng, CATEGORY_WEIGHTS)
        updated = min(last + (rng.uniform(0, 2 * 86400) if closed else 0), plan.now.timestamp())
        case_status.append(status)
        case_id = case_first_id + index
        case_rows.append(
            (
                case_id,
                _uuid(rng),
                f"AD-{case_id:06d}",
                status,
                priority,
                category,
                assignee.pk if assignee else None,
                ts(created),
                ts(updated),
                ts(last),
                plan.case_count[index],
            )
        )
    writer.write(
        Case,
        [
            "id",
            "public_id",
            "reference",
            "status",
            "priority",
            "category",
            "assignee_id",
            "created_at",
            "updated_at",
            "last_report_at",
            "report_count",
        ],
        case_rows,
        total=n_cases,
    )
    del case_rows
    result.big_case = f"AD-{case_first_id + big_index:06d}"

    # Entities: those of actioned cases are blocked (see the module docstring).
    say("Entities")
    entity_first_id = writer.reserve_ids(Entity, n_entities)
    blocked = {e for i, s in enumerate(case_status) if s == Case.Status.ACTIONED for e in plan.case_entities[i]}
    storm_entities = {e for i, storm in enumerate(plan.case_storm) if storm for e in plan.case_entities[i]}
    entity_urls: list[str] = []
    entity_rows = []
    for index in range(n_entities):
        kind = Entity.Kind.CHANNEL_OR_GROUP if index in storm_entities else _weighted(rng, KINDS)
        url = _entity_url(rng, index, kind)
        entity_urls.append(url)
        entity_rows.append(
            (
                entity_first_id + index,
                _uuid(rng),
                url,
                kind,
                Entity.Status.BLOCKED
                if index in blocked and kind != Entity.Kind.PRIVATE_CHAT
                else Entity.Status.ACTIVE,
                rng.random() < 0.01,
                ts(ent_first[index]),
                ts(ent_last[index]),
                ent_count[index],
            )
        )
    writer.write(
        Entity,
        ["id", "public_id", "url", "kind", "status", "lookalike", "first_seen", "last_seen", "report_count"],
        entity_rows,
        total=n_entities,
    )
    del entity_rows
    through = Case.entities.through
    links = [(case_first_id + i, entity_first_id + e) for i, ents in enumerate(plan.case_entities) for e in ents]
    writer.write(through, ["case_id", "entity_id"], links, total=len(links))

    # Reports, in the order they arrived, each with its inbound message and entity mentions.
    say("Reports")
    raw_name = store_blob("inbound", hashlib.sha256(PLACEHOLDER_EML).hexdigest(), PLACEHOLDER_EML, ".eml")
    png_sha = hashlib.sha256(PLACEHOLDER_PNG).hexdigest()
    png_name = store_blob("attachments", png_sha, PLACEHOLDER_PNG)
    order = sorted(range(options.reports), key=plan.report_time.__getitem__)
    inbound_first_id = writer.reserve_ids(InboundMessage, options.reports)
    report_first_id = writer.reserve_ids(Report, options.reports)
    run = format(rng.getrandbits(64), "016x")
    text_rng = random.Random(options.seed + 3)
    mentions: list[tuple[int, int, str, str, bool]] = []
    attachments: list[int] = []

    def inbound_rows() -> Iterator[tuple[Any, ...]]:
        for rank, index in enumerate(order):
            when = ts(plan.report_time[index])
            yield (
                inbound_first_id + rank,
                _uuid(rng),
                when,
                SOURCE,
                raw_name,
                len(PLACEHOLDER_EML),
                hashlib.sha256(f"{run}:{rank}".encode()).hexdigest(),
                f"seed.{run}.{rank}@abusedesk.invalid",
                InboundMessage.State.PROCESSED,
                1,
                when,
            )

    writer.write(
        InboundMessage,
        [
            "id",
            "public_id",
            "received_at",
            "source",
            "raw",
            "raw_size",
            "sha256",
            "message_id",
            "state",
            "attempts",
            "processed_at",
        ],
        inbound_rows(),
        total=options.reports,
    )

    seen_reporter_case: set[tuple[int, int]] = set()

    def report_rows() -> Iterator[tuple[Any, ...]]:
        for rank, index in enumerate(order):
            case_index = plan.report_case[index]
            reporter = plan.report_reporter[index]
            report_id = report_first_id + rank
            _code, _w, _n, _d, subjects, bodies = LANGUAGES[plan.report_language[index]]
            ents = plan.case_entities[case_index]
            named = ents if plan.report_choice[index] < 0 else [ents[plan.report_choice[index]]]
            spellings = []
            for entity in named:
                seen_as, defanged = _spelling(text_rng, entity_urls[entity])
                spellings.append(seen_as)
                mentions.append((report_id, entity_first_id + entity, seen_as, "text", defanged))
            key = (reporter, case_index)
            follow_up = key in seen_reporter_case and text_rng.random() < 0.5
            seen_reporter_case.add(key)
            subject = text_rng.choice(subjects)
            if text_rng.random() < 0.02:
                attachments.append(report_id)
            when = ts(plan.report_time[index])
            yield (
                report_id,
                _uuid(rng),
                inbound_first_id + rank,
                reporter_first_id + reporter,
                case_first_id + case_index,
                Report.Kind.FOLLOW_UP if follow_up else Report.Kind.REPORT,
                f"Re: {subject}" if follow_up else subject,
                text_rng.choice(bodies).format(m=", ".join(spellings)),
                LANGUAGE_CODES[plan.report_language[index]],
                f"seed.{run}.{rank}@abusedesk.invalid",
                when - timedelta(seconds=text_rng.randint(5, 600)),
                when,
            )

    writer.write(
        Report,
        [
            "id",
            "public_id",
            "inbound_id",
            "reporter_id",
            "case_id",
            "kind",
            "subject",
            "text",
            "language",
            "message_id",
            "sent_at",
            "received_at",
        ],
        report_rows(),
        total=options.reports,
    )
    writer.write(
        ReportEntity, ["report_id", "entity_id", "seen_as", "source", "defanged"], mentions, total=len(mentions)
    )
    attachment_rows = [
        (
            _uuid(rng),
            report_id,
            f"screenshot_{n}.png",
            "image/png",
            "image/png",
            len(PLACEHOLDER_PNG),
            png_sha,
            png_name,
            False,
        )
        for n, report_id in enumerate(attachments)
    ]
    writer.write(
        Attachment,
        ["public_id", "report_id", "filename", "declared_type", "content_type", "size", "sha256", "file", "is_inline"],
        attachment_rows,
        total=len(attachment_rows),
    )

    result.decisions = _sample_decisions(options, staff, say, rng)
    if connection.vendor == "postgresql":
        # Statistics for the planner, and a visibility map so index-only scans skip the heap
        # (VACUUM cannot run inside a transaction, as in a test: then statistics only).
        command = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
        say(command)
        with connection.cursor() as cursor:
            for model in (Reporter, Entity, Case, through, InboundMessage, Report, ReportEntity, Attachment):
                cursor.execute(f"{command} {connection.ops.quote_name(model._meta.db_table)}")
    result.reports, result.cases, result.reporters, result.entities = options.reports, n_cases, n_reporters, n_entities
    result.rows = writer.rows
    result.seconds = time.monotonic() - started
    return result


def _sample_decisions(
    options: SeedOptions, staff: dict[str, list[User]], say: Callable[[str], None], rng: random.Random
) -> int:
    """Block or decline a sample of open cases through the real actions, for the audit log."""
    wanted = (
        options.sample_decisions if options.sample_decisions is not None else min(300, max(2, options.reports // 3000))
    )
    # Small open cases only: the campaigns stay open for the benchmark and the moderators. Drawn
    # with the seeded generator (not ORDER BY random()), so the same seed decides the same cases.
    candidates = list(
        Case.objects.filter(status__in=[Case.Status.NEW, Case.Status.OPEN], report_count__lt=BIG_CASE_REPORTS // 10)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    sample = sorted(rng.sample(candidates, min(wanted, len(candidates))))
    say(f"Decisions through the real actions ({wanted})")
    done = 0
    for case in Case.objects.filter(pk__in=sample).order_by("pk"):
        actor = Actor(rng.choice(staff[roles.MODERATOR]), ip="192.0.2.10")
        # Read now, not prefetched: an entity blocked through an earlier sampled case is no longer
        # active, and blocking it again would be no decision at all.
        entities = list(
            case.entities.filter(status=Entity.Status.ACTIVE).exclude(kind=Entity.Kind.PRIVATE_CHAT).order_by("pk")
        )
        if entities and rng.random() < 0.7:
            do_block_entity(
                entities[0],
                category=_weighted(rng, CATEGORY_WEIGHTS),
                statement="Seeded decision: the reports show a violation of this policy.",
                actor=actor,
                case=case,
            )
        else:
            do_decline_case(
                case,
                reason=rng.choice(DeclineReason.values),
                statement="Seeded decision: the reports do not show a violation.",
                actor=actor,
            )
        done += 1
    return done


def describe(result: SeedResult) -> str:
    return (
        f"Seeded {result.reports:,} reports in {result.cases:,} cases from {result.reporters:,} reporters about "
        f"{result.entities:,} entities: {result.rows:,} rows in {result.seconds:.1f} s "
        f"({result.rows / max(result.seconds, 1e-6):,.0f} rows/s, {result.reports / max(result.seconds, 1e-6):,.0f} reports/s). "
        f"Largest campaign: {result.big_case}. Decisions through actions: {result.decisions}."
    )
