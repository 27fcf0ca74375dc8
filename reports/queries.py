"""Read-only queries behind the moderator workspace, each with deliberate joins and prefetches.

Nothing here changes state. The queue pages by keyset (never OFFSET/COUNT over the whole table),
so a page costs the same on the first and the millionth case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from reports.models import Case, Entity, Report, Reporter

# sort name -> (field, descending)
SORTS: dict[str, tuple[str, bool]] = {
    "newest": ("created_at", True),
    "oldest": ("created_at", False),
    "reports": ("report_count", True),
}


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """What the moderator asked the queue for; empty strings mean "any"."""

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


def search_cases(cases: QuerySet[Case], q: str) -> QuerySet[Case]:
    """Cases whose reference, report subject or text, entity URL or reporter address match `q`."""
    q = q.strip()
    if not q:
        return cases
    entity_hit = Exists(Case.entities.through.objects.filter(case_id=OuterRef("pk"), entity__url__icontains=q))
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        # Addresses are not words: the text parser keeps "x@other.example" as one token, so a
        # search for "other.example" matches reporters by substring instead.
        reports = Report.objects.annotate(document=SearchVector("subject", "text")).filter(
            Q(document=SearchQuery(q, search_type="websearch"))
            | Q(reporter__in=Reporter.objects.filter(email__icontains=q)),
            case_id=OuterRef("pk"),
        )
    else:
        reports = Report.objects.filter(
            Q(subject__icontains=q) | Q(text__icontains=q) | Q(reporter__email__icontains=q),
            case_id=OuterRef("pk"),
        )
    return cases.filter(Q(reference__iexact=q) | entity_hit | Exists(reports))


def filter_cases(filters: QueueFilters) -> QuerySet[Case]:
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
            Exists(
                Case.entities.through.objects.filter(case_id=OuterRef("pk"), entity__status=Entity.Status.BLOCKED)
            )
        )
    if filters.mine and filters.user_id is not None:
        cases = cases.filter(assignee_id=filters.user_id)
    elif filters.unassigned:
        cases = cases.filter(assignee__isnull=True)
    elif filters.assignee:
        cases = cases.filter(assignee__username=filters.assignee)
    return search_cases(cases, filters.q)


def cases_for_queue(filters: QueueFilters, *, after: tuple[object, int] | None = None) -> QuerySet[Case]:
    """The queue in the requested order, starting after the keyset cursor `(value, pk)`."""
    field, descending = SORTS.get(filters.sort, SORTS["newest"])
    cases = filter_cases(filters)
    if after is not None:
        value, pk = after
        if descending:
            cases = cases.filter(Q(**{f"{field}__lt": value}) | Q(**{field: value, "pk__lt": pk}))
        else:
            cases = cases.filter(Q(**{f"{field}__gt": value}) | Q(**{field: value, "pk__gt": pk}))
    order = [f"-{field}", "-pk"] if descending else [field, "pk"]
    return (
        cases.select_related("assignee")
        .prefetch_related(Prefetch("entities", queryset=Entity.objects.only("public_id", "url", "kind", "status")))
        .order_by(*order)
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
    """Counts for the filter bar: one grouped query per status, one conditional aggregate."""
    counts = dict.fromkeys(Case.Status.values, 0)
    for status, n in Case.objects.order_by().values_list("status").annotate(n=Count("pk")):
        counts[status] = n
    counts["open"] = sum(counts[s] for s in Case.OPEN_STATUSES)
    counts["all"] = sum(counts[s] for s in Case.Status.values)
    extra = Case.objects.filter(status__in=Case.OPEN_STATUSES).aggregate(
        mine=Count("pk", filter=Q(assignee_id=user_id)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
    )
    counts.update(extra)
    return counts


def new_cases_since(since: datetime) -> int:
    return Case.objects.filter(created_at__gt=since).count()


def report_languages() -> list[str]:
    return list(Report.objects.exclude(language="").order_by("language").values_list("language", flat=True).distinct()[:200])


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
