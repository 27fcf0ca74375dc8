"""Read-only queries behind the moderator workspace and the API, each with deliberate joins and prefetches.

Nothing here changes state. The queue pages by keyset (never OFFSET/COUNT over the whole table),
so a page costs the same on the first and the millionth case. The queue and the API's case list
filter through the same `filter_cases`, so a filter means the same in both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Left
from django.utils.translation import gettext

from reports.entities import canonicalize
from reports.models import Case, Entity, Report, Reporter

if TYPE_CHECKING:
    from django.contrib.postgres.search import SearchVector

# The text search configuration of the report_case_search index (reports migration 0009), and
# how much of a report's text it covers: a tsvector may not exceed 1 MB.
SEARCH_CONFIG = "english"
SEARCH_TEXT_CHARS = 100_000
# A search on PostgreSQL keeps the first this-many cases of each way to match (see _search_window),
# so one page of search results holds at most SEARCH_WINDOW - 1 cases and still knows a next page.
SEARCH_WINDOW = 101

# sort name -> (field, descending)
SORTS: dict[str, tuple[str, bool]] = {
    "newest": ("created_at", True),
    "oldest": ("created_at", False),
    "reports": ("report_count", True),
}


def normalise_reference(reference: str) -> str:
    """A case reference as stored (AD-000123) from any letter case, so that it matches by the unique index."""
    return reference.strip().upper()


def entity_url(spelling: str, *, field: str = "entity") -> str:
    """The canonical URL of any spelling of an entity's link, read as intake reads mail (aliases,
    @name, tg: links, defanged and look-alike spellings). ValidationError naming `field` when the
    spelling names no entity."""
    mention = canonicalize(spelling)
    if mention is None:
        raise ValidationError({field: [gettext("Not a link to a public channel, group, bot, invite or set.")]})
    return mention.url


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """What the queue or the API's case list was asked for; empty strings mean "any".

    `status` is a status, "open" for new, open and waiting, or anything else for every status;
    `entity` any spelling of an entity's link, matching cases that name that entity.
    """

    status: str = "open"
    category: str = ""
    language: str = ""
    kind: str = ""
    assignee: str = ""
    mine: bool = False
    unassigned: bool = False
    blocked: bool = False
    q: str = ""
    sort: str = "newest"
    user_id: int | None = None
    entity: str = ""


def search_document() -> SearchVector:
    """The expression of the report_case_search index (migration 0009): only a search written
    with exactly this expression, config included, can use it."""
    from django.contrib.postgres.search import SearchVector

    return SearchVector("subject", Left("text", SEARCH_TEXT_CHARS), config=SEARCH_CONFIG)


def _postgres_search_conditions(q: str) -> list[Q | Exists]:
    """Each way a case can match `q` on PostgreSQL, each served by an index of migration 0003 or 0009."""
    from django.contrib.postgres.search import SearchQuery

    words = Report.objects.annotate(document=search_document()).filter(
        case_id=OuterRef("pk"), document=SearchQuery(q, config=SEARCH_CONFIG, search_type="websearch")
    )
    # Addresses are not words: the text parser keeps "x@other.example" as one token, so a
    # search for "other.example" matches reporters by substring instead.
    reporters = Report.objects.filter(case_id=OuterRef("pk"), reporter__in=Reporter.objects.filter(email__icontains=q))
    entities = Case.entities.through.objects.filter(case_id=OuterRef("pk"), entity__url__icontains=q)
    # References are upper case ("AD-000123"), so this is `iexact` with the unique index.
    return [Q(reference=q.upper()), Exists(words), Exists(reporters), Exists(entities)]


def search_cases(cases: QuerySet[Case], q: str) -> QuerySet[Case]:
    """Cases whose reference, report subject or text, entity URL or reporter address match `q`."""
    q = q.strip()
    if not q:
        return cases
    if connection.vendor == "postgresql":
        return cases.filter(reduce(or_, _postgres_search_conditions(q)))
    entity_hit = Exists(Case.entities.through.objects.filter(case_id=OuterRef("pk"), entity__url__icontains=q))
    reports = Report.objects.filter(
        Q(subject__icontains=q) | Q(text__icontains=q) | Q(reporter__email__icontains=q),
        case_id=OuterRef("pk"),
    )
    return cases.filter(Q(reference__iexact=q) | entity_hit | Exists(reports))


def _search_window(cases: QuerySet[Case], q: str, order: list[str]) -> QuerySet[Case]:
    """PostgreSQL: the cases of `cases` matching `q`, from the first SEARCH_WINDOW of each way to match.

    Each way is its own semi-join, so the planner chooses per way between walking the queue in
    order and probing each case (a frequent word) or starting from the index of matches (a rare
    one). One OR across them would probe every case for every way: seconds for a rare word.
    """
    branches = [
        cases.filter(condition).order_by(*order).values("pk")[:SEARCH_WINDOW]
        for condition in _postgres_search_conditions(q)
    ]
    return cases.filter(pk__in=branches[0].union(*branches[1:], all=True))


def filter_cases(filters: QueueFilters) -> QuerySet[Case]:
    """The cases matching every filter, unordered. ValidationError (see `entity_url`) for an entity
    filter that names no entity."""
    cases = Case.objects.all()
    if filters.status == "open":
        cases = cases.filter(status__in=Case.OPEN_STATUSES)
    elif filters.status in Case.Status.values:
        cases = cases.filter(status=filters.status)
    if filters.category:
        cases = cases.filter(category=filters.category)
    if filters.language:
        cases = cases.filter(Exists(Report.objects.filter(case_id=OuterRef("pk"), language=filters.language)))
    if filters.kind:
        cases = cases.filter(
            Exists(Case.entities.through.objects.filter(case_id=OuterRef("pk"), entity__kind=filters.kind))
        )
    if filters.blocked:
        cases = cases.filter(
            Exists(Case.entities.through.objects.filter(case_id=OuterRef("pk"), entity__status=Entity.Status.BLOCKED))
        )
    if filters.entity:
        url = entity_url(filters.entity)
        cases = cases.filter(Exists(Case.entities.through.objects.filter(case_id=OuterRef("pk"), entity__url=url)))
    if filters.mine and filters.user_id is not None:
        cases = cases.filter(assignee_id=filters.user_id)
    elif filters.unassigned:
        cases = cases.filter(assignee__isnull=True)
    elif filters.assignee:
        cases = cases.filter(assignee__username=filters.assignee)
    return search_cases(cases, filters.q)


def cases_for_queue(filters: QueueFilters, *, after: tuple[object, int] | None = None) -> QuerySet[Case]:
    """The queue in the requested order, starting after the keyset cursor `(value, pk)`.

    With a search on PostgreSQL, slice at most SEARCH_WINDOW cases from it (a page and one more):
    beyond that window of each way to match, the order is no longer complete.
    """
    field, descending = SORTS.get(filters.sort, SORTS["newest"])
    windowed = connection.vendor == "postgresql" and bool(filters.q.strip())
    cases = filter_cases(replace(filters, q="") if windowed else filters)
    if after is not None:
        value, pk = after
        if descending:
            cases = cases.filter(Q(**{f"{field}__lt": value}) | Q(**{field: value, "pk__lt": pk}))
        else:
            cases = cases.filter(Q(**{f"{field}__gt": value}) | Q(**{field: value, "pk__gt": pk}))
    order = [f"-{field}", "-pk"] if descending else [field, "pk"]
    if windowed:
        cases = _search_window(cases, filters.q.strip(), order)
    return (
        cases.select_related("assignee")
        .prefetch_related(Prefetch("entities", queryset=Entity.objects.only("public_id", "url", "kind", "status")))
        .order_by(*order)
    )


LISTED_ENTITY_FIELDS = ("public_id", "url", "kind", "status")


def case_list(filters: QueueFilters) -> QuerySet[Case]:
    """The cases matching `filters` with what a list shows of each (the case merged into, the
    entities by URL), unordered: the caller pages it in its own order."""
    return (
        filter_cases(filters)
        .select_related("merged_into")
        .prefetch_related(Prefetch("entities", queryset=Entity.objects.only(*LISTED_ENTITY_FIELDS).order_by("url")))
    )


def cursor_value(case: Case, sort: str) -> object:
    field, _ = SORTS.get(sort, SORTS["newest"])
    return getattr(case, field)


def parse_cursor(raw: str, sort: str) -> tuple[object, int] | None:
    """Decode `value|pk` from the page link; anything malformed starts from the top."""
    field, _ = SORTS.get(sort, SORTS["newest"])
    value, sep, pk = raw.rpartition("|")
    if not sep or not pk.isdigit():
        return None
    try:
        parsed: object = int(value) if field == "report_count" else datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed, int(pk)


def encode_cursor(case: Case, sort: str) -> str:
    value = cursor_value(case, sort)
    return f"{value.isoformat() if isinstance(value, datetime) else value}|{case.pk}"


def languages_by_case(case_ids: Iterable[int]) -> dict[int, list[str]]:
    """The distinct report languages of each case, in one query for a whole page."""
    rows = (
        Report.objects.filter(case_id__in=list(case_ids))
        .exclude(language="")
        .order_by()
        .values_list("case_id", "language")
        .distinct()
    )
    languages: dict[int, list[str]] = defaultdict(list)
    for case_id, language in rows:
        languages[case_id].append(language)
    return {case_id: sorted(langs) for case_id, langs in languages.items()}


def queue_counts(user_id: int | None) -> dict[str, int]:
    """Counts for the filter bar, in one pass over the cases (a second pass costs as much again)."""
    counts = dict.fromkeys([*Case.Status.values, "mine", "unassigned"], 0)
    rows = (
        Case.objects.order_by()
        .values_list("status")
        .annotate(
            n=Count("pk"),
            mine=Count("pk", filter=Q(assignee_id=user_id)),
            unassigned=Count("pk", filter=Q(assignee__isnull=True)),
        )
    )
    for status, n, mine, unassigned in rows:
        counts[status] = n
        if status in Case.OPEN_STATUSES:
            counts["mine"] += mine
            counts["unassigned"] += unassigned
    # "all" first: "open" is both a status and the filter for new, open and waiting cases, and
    # the filter's count replaces the status's.
    counts["all"] = sum(counts[s] for s in Case.Status.values)
    counts["open"] = sum(counts[s] for s in Case.OPEN_STATUSES)
    return counts


def new_cases_since(since: datetime) -> int:
    return Case.objects.filter(created_at__gt=since).count()


def report_languages() -> list[str]:
    """The distinct report languages, by walking the report_language_case index from one language to
    the next (a loose index scan) rather than reading every report."""
    table = connection.ops.quote_name(Report._meta.db_table)
    sql = f"""
        WITH RECURSIVE languages(language) AS (
            SELECT MIN(language) FROM {table} WHERE language > ''
            UNION ALL
            SELECT (SELECT MIN(r.language) FROM {table} r WHERE r.language > languages.language)
            FROM languages WHERE languages.language IS NOT NULL
        )
        SELECT language FROM languages WHERE language IS NOT NULL LIMIT 200
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [language for (language,) in cursor.fetchall()]


def case_entities(case: Case) -> QuerySet[Entity]:
    """A case's entities with the other cases each appears in."""
    others = Case.objects.exclude(pk=case.pk).only("reference", "status").order_by("-created_at")
    return case.entities.order_by("url").prefetch_related(Prefetch("cases", queryset=others, to_attr="other_cases"))


def case_reports(case: Case) -> QuerySet[Report]:
    return (
        Report.objects.filter(case=case)
        .select_related("reporter")
        .prefetch_related("attachments")
        .order_by("received_at", "pk")
    )


def entity_cases(entity: Entity) -> QuerySet[Case]:
    return entity.cases.select_related("assignee").order_by("-created_at")


def entity_reports(entity: Entity) -> QuerySet[Report]:
    return entity.reports.select_related("reporter", "case").order_by("-received_at", "-pk")
