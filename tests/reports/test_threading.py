"""DESIGN's threading rules, one by one, through the real intake path."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

from reports.actions import do_register_outbound_message_id
from reports.models import Case, Entity, InboundMessage, Report, Reporter
from reports.tokens import make_case_token
from tests.mail import build_mail


def test_first_report_opens_a_new_case_with_its_entity(ingest):
    message = ingest(build_mail("Block t.me/Execution_News please"))
    report = message.report
    assert message.state == InboundMessage.State.PROCESSED
    assert report.kind == Report.Kind.REPORT
    assert report.case.reference == f"AD-{report.case.pk:06d}"
    assert report.case.status == Case.Status.NEW
    assert [e.url for e in report.case.entities.all()] == ["https://t.me/execution_news"]


def test_redelivery_of_the_same_bytes_stores_nothing_new(ingest):
    raw = build_mail()
    first = ingest(raw)
    second = ingest(raw)
    assert first.pk == second.pk
    assert InboundMessage.objects.count() == 1
    assert Report.objects.count() == 1


def test_same_message_id_same_sender_same_content_is_ignored_as_redelivery(ingest):
    raw = build_mail()
    first = ingest(raw)
    again = ingest(b"Received: from relay2.example.net\n" + raw)
    assert again.state == InboundMessage.State.IGNORED
    assert again.duplicate_of == first
    assert Report.objects.count() == 1


def test_same_message_id_with_different_content_is_kept_and_flagged(ingest):
    first = ingest(build_mail("Block t.me/first_channel"))
    second = ingest(build_mail("Block t.me/second_channel"))
    assert second.state == InboundMessage.State.PROCESSED
    assert second.message_id_collision
    assert not InboundMessage.objects.get(pk=first.pk).message_id_collision
    assert Report.objects.count() == 2
    assert "Message-ID" in second.report.notes[0]


def test_another_sender_reusing_a_message_id_does_not_take_the_first_senders_replies(ingest):
    """Rule 1: a collision never hides the first mail; its sender's reply still reaches their case."""
    victim = ingest(build_mail("Block t.me/victim_channel", sender="victim@example.org", message_id="<v@example.org>"))
    attacker = ingest(build_mail("Something else entirely", sender="mallory@example.net", message_id="<v@example.org>"))
    assert attacker.message_id_collision
    assert attacker.report.case != victim.report.case
    reply = ingest(
        build_mail(
            "More: it also runs a bot",
            sender="victim@example.org",
            message_id="<v2@example.org>",
            headers={"In-Reply-To": "<v@example.org>", "References": "<v@example.org>"},
        )
    )
    assert (reply.report.kind, reply.report.case) == (Report.Kind.FOLLOW_UP, victim.report.case)
    # Mallory's reply to the same Message-ID goes to Mallory's case, and nobody else's.
    theirs = ingest(
        build_mail(
            "Re: it",
            sender="mallory@example.net",
            message_id="<m2@example.net>",
            headers={"In-Reply-To": "<v@example.org>"},
        )
    )
    assert theirs.report.case == attacker.report.case


def test_reply_to_own_earlier_report_is_a_follow_up_in_that_case(ingest):
    first = ingest(build_mail("Block t.me/first_channel", message_id="<a@example.org>"))
    follow = ingest(
        build_mail(
            "Also t.me/backup_channel",
            message_id="<b@example.org>",
            headers={"In-Reply-To": "<a@example.org>", "References": "<a@example.org>"},
        )
    )
    assert follow.report.kind == Report.Kind.FOLLOW_UP
    assert follow.report.case == first.report.case
    assert set(first.report.case.entities.values_list("url", flat=True)) == {
        "https://t.me/first_channel",
        "https://t.me/backup_channel",
    }


def test_reply_to_our_outbound_mail_to_this_sender_is_a_follow_up(ingest):
    first = ingest(build_mail("Block t.me/first_channel"))
    case = first.report.case
    do_register_outbound_message_id("<reply-1@abusedesk.localhost>", case=case, reporter=first.report.reporter)
    follow = ingest(
        build_mail(
            "Thanks! Nothing new.",
            message_id="<c@example.org>",
            headers={"In-Reply-To": "<reply-1@abusedesk.localhost>"},
        )
    )
    assert follow.report.kind == Report.Kind.FOLLOW_UP
    assert follow.report.case == case


def test_an_auto_reply_to_our_mail_is_stored_on_that_case_without_bumping_or_reopening_it(ingest):
    first = ingest(build_mail("Block t.me/first_channel"))
    case = first.report.case
    Case.objects.filter(pk=case.pk).update(status=Case.Status.DECLINED)
    do_register_outbound_message_id("<reply-9@abusedesk.localhost>", case=case, reporter=first.report.reporter)
    before = Case.objects.get(pk=case.pk)
    out_of_office = ingest(
        build_mail(
            "I am out of the office until Monday.",
            subject="Automatic reply: your report",
            message_id="<ooo@example.org>",
            headers={"Auto-Submitted": "auto-replied", "In-Reply-To": "<reply-9@abusedesk.localhost>"},
        )
    ).report
    assert (out_of_office.kind, out_of_office.case) == (Report.Kind.AUTOMATIC, case)
    after = Case.objects.get(pk=case.pk)
    assert (after.status, after.report_count, after.last_report_at) == (
        Case.Status.DECLINED,
        before.report_count,
        before.last_report_at,
    )


def test_automatic_mail_that_references_nothing_of_ours_opens_no_case(ingest):
    first = ingest(build_mail("Block t.me/first_channel", message_id="<orig@example.org>"))
    bounce = ingest(
        build_mail(
            "Delivery failed",
            sender="MAILER-DAEMON@example.net",
            message_id="<b@example.net>",
            # A reporter's own Message-ID is not ours: it proves nothing about the case.
            headers={"Auto-Submitted": "auto-replied", "In-Reply-To": "<orig@example.org>"},
        )
    ).report
    assert (bounce.kind, bounce.case) == (Report.Kind.AUTOMATIC, None)
    assert Case.objects.get().pk == first.report.case_id


def test_reference_to_someone_elses_mail_never_attaches_silently(ingest):
    victim = ingest(build_mail("Block t.me/first_channel", message_id="<victim@example.org>"))
    stranger = ingest(
        build_mail(
            "Nothing to see",
            sender="stranger@evil.example",
            message_id="<s@evil.example>",
            headers={"In-Reply-To": "<victim@example.org>"},
        )
    )
    assert stranger.report.case != victim.report.case
    assert stranger.report.kind == Report.Kind.REPORT
    assert any(victim.report.case.reference in note for note in stranger.report.notes)


def test_valid_token_from_a_reporter_on_the_case_threads_there(ingest):
    first = ingest(build_mail("Block t.me/first_channel"))
    case = first.report.case
    token = make_case_token(case.reference)
    follow = ingest(
        build_mail("more info, no links", subject=f"Re: [{token}] your report", message_id="<t@example.org>")
    )
    assert follow.report.case == case
    assert follow.report.kind == Report.Kind.FOLLOW_UP


def test_token_in_plus_address_threads_too(ingest):
    first = ingest(build_mail("Block t.me/first_channel"))
    case = first.report.case
    to = f"abuse+{make_case_token(case.reference)}@abusedesk.localhost"
    follow = ingest(build_mail("more info", to=to, message_id="<p@example.org>"))
    assert follow.report.case == case


def test_valid_token_from_a_stranger_is_ignored(ingest):
    first = ingest(build_mail("Block t.me/first_channel"))
    case = first.report.case
    token = make_case_token(case.reference)
    intruder = ingest(
        build_mail("inject", sender="mallory@evil.example", subject=f"[{token}]", message_id="<m@evil.example>")
    )
    assert intruder.report.case != case
    assert any("not a reporter" in note for note in intruder.report.notes)


def test_forged_token_is_ignored(ingest):
    first = ingest(build_mail("Block t.me/first_channel"))
    case = first.report.case
    forged = ingest(
        build_mail("no links here", subject=f"[{case.reference}-aaaaaaaaaaaaaaaa]", message_id="<f@example.org>")
    )
    assert forged.report.case != case
    assert any("bad signature" in note for note in forged.report.notes)


def test_report_about_an_entity_with_an_open_case_joins_it(ingest):
    first = ingest(build_mail("Block t.me/storm_channel"))
    second = ingest(
        build_mail(
            "https://telegram.me/STORM_CHANNEL and t.me/other_chan",
            sender="b@example.net",
            message_id="<x@example.net>",
        )
    )
    case = first.report.case
    assert second.report.case == case
    assert second.report.kind == Report.Kind.REPORT
    assert case.entities.count() == 2
    case.refresh_from_db()
    assert case.report_count == 2
    assert Entity.objects.get(url="https://t.me/storm_channel").report_count == 2


def test_entity_whose_case_is_closed_gets_a_new_case(ingest):
    first = ingest(build_mail("Block t.me/storm_channel"))
    Case.objects.filter(pk=first.report.case_id).update(status=Case.Status.ACTIONED)
    second = ingest(build_mail("t.me/storm_channel again", sender="b@example.net", message_id="<y@example.net>"))
    assert second.report.case != first.report.case


def test_report_without_entities_opens_its_own_case(ingest):
    first = ingest(build_mail("I saw something bad", message_id="<n1@example.org>"))
    second = ingest(build_mail("Me too, no link", sender="b@example.net", message_id="<n2@example.net>"))
    assert first.report.case is not None
    assert first.report.case != second.report.case


def test_follow_up_to_a_closed_case_reopens_it(ingest):
    first = ingest(build_mail("Block t.me/first_channel", message_id="<a@example.org>"))
    Case.objects.filter(pk=first.report.case_id).update(status=Case.Status.DECLINED)
    ingest(build_mail("Why not?", message_id="<b@example.org>", headers={"In-Reply-To": "<a@example.org>"}))
    assert Case.objects.get(pk=first.report.case_id).status == Case.Status.OPEN


def test_auto_reply_is_automatic_and_opens_no_case(ingest):
    message = ingest(build_mail("I am out of office", headers={"Auto-Submitted": "auto-replied"}))
    assert message.report.kind == Report.Kind.AUTOMATIC
    assert message.report.case is None
    assert not Case.objects.exists()


def test_mail_from_our_own_address_is_treated_as_a_loop(ingest):
    message = ingest(build_mail("t.me/looping_channel", sender="abuse@abusedesk.localhost"))
    assert message.report.kind == Report.Kind.AUTOMATIC
    assert not Case.objects.exists()


def test_reporter_language_and_counters_are_recorded(ingest):
    message = ingest(build_mail("Cette chaîne publie des vidéos d'exécutions, merci de la bloquer: t.me/chaine_x"))
    reporter = Reporter.objects.get(pk=message.report.reporter_id)
    assert message.report.language == "fr"
    assert (reporter.email, reporter.display_name, reporter.language, reporter.report_count) == (
        "reporter@example.org",
        "Reporter",
        "fr",
        1,
    )


def test_reply_to_header_never_becomes_the_reporter(ingest):
    message = ingest(build_mail(headers={"Reply-To": "victim@example.com"}))
    assert message.report.reporter.email == "reporter@example.org"
    assert message.report.reply_to == "victim@example.com"  # kept as metadata only


def _over_the_part_limit() -> bytes:
    """600 parts naming t.me/limit_channel, over the parser's 500."""
    parts = "".join(f"--b\nContent-Type: text/plain\n\npart {i} t.me/limit_channel\n" for i in range(600))
    return (
        "From: r@example.org\nTo: abuse@abusedesk.localhost\nSubject: many parts\nMessage-ID: <many@example.org>\n"
        f'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n{parts}--b--\n'
    ).encode()


def test_mail_that_hits_parser_limits_opens_a_quarantined_case(ingest):
    message = ingest(_over_the_part_limit())
    case = message.report.case
    assert case.parse_error.startswith("parser limits hit: ")
    assert "max_parts" in case.parse_error
    assert message.report.parse_error == case.parse_error


def test_mail_that_hits_parser_limits_and_joins_a_case_is_quarantined_itself(ingest):
    """The case stays as it was; the report carries the flag (and is never acknowledged)."""
    healthy = ingest(build_mail("Block t.me/limit_channel", message_id="<first@example.org>")).report.case
    report = ingest(_over_the_part_limit()).report
    assert report.case == healthy
    assert report.parse_error.startswith("parser limits hit: ") and "max_parts" in report.parse_error
    healthy.refresh_from_db()
    assert healthy.parse_error == ""


SPAM_TEXT = "This group sells weapons and stolen passports, the admins must be stopped now. Act!"


def test_rotating_senders_with_one_text_and_no_entity_join_one_case(ingest):
    """SECURITY T9: a storm of the same body from many addresses is one case, not hundreds."""
    first = ingest(build_mail(SPAM_TEXT, sender="a@one.example", message_id="<s1@one.example>"))
    again = ingest(build_mail(f"  {SPAM_TEXT.upper()}\n", sender="b@two.example", message_id="<s2@two.example>"))
    assert again.report.case == first.report.case
    assert Case.objects.get(pk=first.report.case_id).report_count == 2
    assert again.report.notes == [f"Same text as an earlier report on {first.report.case.reference}; added to it."]
    assert again.report.body_sha256 == first.report.body_sha256 != ""


def test_short_texts_never_join_a_case_on_their_text(ingest):
    first = ingest(build_mail("See the attached screenshot.", sender="a@one.example", message_id="<s1@one.example>"))
    again = ingest(build_mail("See the attached screenshot.", sender="b@two.example", message_id="<s2@two.example>"))
    assert first.report.body_sha256 == ""
    assert again.report.case != first.report.case


def test_same_text_with_other_attachments_is_another_report(ingest):
    def with_attachment(data: bytes, n: int) -> bytes:
        mail = message_from_bytes(
            build_mail(SPAM_TEXT, sender=f"r{n}@example.org", message_id=f"<a{n}@x>"), policy=default
        )
        mail.add_attachment(data, maintype="image", subtype="png", filename="shot.png")
        return mail.as_bytes()

    first = ingest(with_attachment(b"\x89PNG first", 1))
    again = ingest(with_attachment(b"\x89PNG second", 2))
    assert again.report.case != first.report.case


def test_same_text_does_not_reopen_a_closed_case(ingest):
    first = ingest(build_mail(SPAM_TEXT, sender="a@one.example", message_id="<s1@one.example>"))
    Case.objects.filter(pk=first.report.case_id).update(status=Case.Status.DECLINED)
    again = ingest(build_mail(SPAM_TEXT, sender="b@two.example", message_id="<s2@two.example>"))
    assert again.report.case != first.report.case
    assert again.report.case.status == Case.Status.NEW
