from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection

from reports import queries
from reports.models import Case, InboundMessage, Report
from tests.mail import build_mail


@pytest.fixture
def needle_cases(ingest: Callable[..., InboundMessage]) -> list[Case]:
    """Four cases matching "needle", each in another way, newest last; and one that does not match."""
    mails = [
        build_mail("A needle in t.me/first_haystack", message_id="<n1@example.org>"),
        build_mail("Scam shop t.me/needle_shop", message_id="<n2@example.org>", sender="b@example.org"),
        build_mail("Spam from t.me/third_haystack", message_id="<n3@example.org>", sender="needle@example.net"),
        build_mail("Sells NEEDLES? t.me/fourth_haystack", message_id="<n4@example.org>", sender="c@example.org"),
        build_mail("Unrelated t.me/fifth_haystack", message_id="<n5@example.org>", sender="d@example.org"),
    ]
    cases = [ingest(raw).report.case for raw in mails]
    return cases[:4]


def _all_pages(filters: queries.QueueFilters, page_size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while True:
        rows = list(queries.cases_for_queue(filters, after=after)[: page_size + 1])
        pages.append([case.reference for case in rows[:page_size]])
        if len(rows) <= page_size:
            return pages
        after = queries.parse_cursor(queries.encode_cursor(rows[page_size - 1], filters.sort), filters.sort)


def test_search_pages_through_every_way_to_match_in_queue_order(
    needle_cases: list[Case], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window of two: every page must still be complete and in order (PostgreSQL's union of
    # per-way windows; SQLite's single query must agree).
    monkeypatch.setattr(queries, "SEARCH_WINDOW", 2)
    newest_first = [case.reference for case in reversed(needle_cases)]
    pages = _all_pages(queries.QueueFilters(q="needle"), page_size=1)
    found = [reference for page in pages for reference in page]
    # "NEEDLES" matches by stemming on PostgreSQL and as a substring on SQLite.
    assert found == newest_first


def test_search_keeps_the_other_filters(needle_cases: list[Case]) -> None:
    first = needle_cases[0]
    Case.objects.filter(pk=first.pk).update(status=Case.Status.WAITING)
    found = [c.reference for c in queries.cases_for_queue(queries.QueueFilters(q="needle", status="waiting"))]
    assert found == [first.reference]


def test_search_finds_a_case_by_its_reference_in_any_case(needle_cases: list[Case]) -> None:
    reference = needle_cases[1].reference
    found = [c.reference for c in queries.cases_for_queue(queries.QueueFilters(q=reference.lower()))]
    assert found == [reference]


def test_report_languages_are_the_distinct_languages_in_order(ingest: Callable[..., InboundMessage]) -> None:
    ingest(build_mail("Bonjour, la chaîne t.me/a_channel diffuse des vidéos d'exécutions. Merci de la bloquer."))
    ingest(
        build_mail(
            "Hello, the channel t.me/b_channel posts execution videos every day. Please block it now.",
            message_id="<en@example.org>",
        )
    )
    languages = queries.report_languages()
    assert languages == sorted(set(languages))
    assert {"en", "fr"} <= set(languages)
    assert "" not in languages


def test_queue_counts_count_statuses_and_open_cases_of_the_moderator(needle_cases: list[Case], alice: User) -> None:
    mine, closed = needle_cases[0], needle_cases[1]
    Case.objects.filter(pk=mine.pk).update(assignee=alice)
    Case.objects.filter(pk=closed.pk).update(assignee=alice, status=Case.Status.DECLINED)
    counts = queries.queue_counts(alice.pk)
    # Five cases: the four needles and the unrelated one.
    assert (counts["new"], counts["declined"], counts["actioned"]) == (4, 1, 0)
    assert (counts["open"], counts["all"]) == (4, 5)
    assert (counts["mine"], counts["unassigned"]) == (1, 3)


def test_an_entity_filter_matches_the_cases_naming_any_spelling_of_it(needle_cases: list[Case]) -> None:
    for spelling in ("t.me/Needle_Shop", "hxxps://t[.]me/needle_shop", "@needle_shop", "needle_shop.t.me"):
        cases = queries.filter_cases(queries.QueueFilters(status="all", entity=spelling))
        assert [case.reference for case in cases] == [needle_cases[1].reference]


def test_an_entity_filter_that_names_no_entity_is_an_error(db: None) -> None:
    with pytest.raises(ValidationError) as raised:
        queries.filter_cases(queries.QueueFilters(entity="needle"))
    assert list(raised.value.message_dict) == ["entity"]


def test_a_reference_is_normalised_to_how_it_is_stored() -> None:
    assert queries.normalise_reference(" ad-000123 ") == "AD-000123"


def _distinct_words(count: int) -> str:
    """`count` different eight-letter words: every one a lexeme of its own in a tsvector."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return " ".join("".join(letters[(n // 26**i) % 26] for i in range(4)) + "zqxw" for n in range(count))


def test_a_report_of_a_hundred_thousand_distinct_words_is_stored_and_found(
    ingest: Callable[..., InboundMessage],
) -> None:
    """Its tsvector of the whole text is over PostgreSQL's 1 MB limit: the insert failed, so the
    mail never became a report. The index covers the first SEARCH_TEXT_CHARS characters."""
    words = _distinct_words(100_000)
    assert len(words) > 5 * queries.SEARCH_TEXT_CHARS
    message = ingest(build_mail("Block t.me/wordy_channel. " + words + " lasttailword"))
    assert message.state == InboundMessage.State.PROCESSED, message.error
    case = message.report.case
    assert [c.pk for c in queries.cases_for_queue(queries.QueueFilters(q="aaaazqxw"))] == [case.pk]
    tail = [c.pk for c in queries.cases_for_queue(queries.QueueFilters(q="lasttailword"))]
    # Past the indexed prefix, PostgreSQL's full-text search does not look; SQLite's substring
    # search reads the whole text.
    assert tail == ([] if connection.vendor == "postgresql" else [case.pk])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the full-text index exists on PostgreSQL only")
def test_the_queue_search_is_written_with_the_expression_of_the_index(needle_cases: list[Case]) -> None:
    """With sequential and plain index scans off, only a bitmap scan of report_case_search can
    serve the words condition, and only if the search writes the index's expression exactly."""
    from django.contrib.postgres.search import SearchQuery

    words = Report.objects.annotate(document=queries.search_document()).filter(
        document=SearchQuery("needle", config=queries.SEARCH_CONFIG, search_type="websearch")
    )
    sql, params = words.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on report_case_search" in plan
