"""Replies to internationalised addresses (issue 11: an IDN reporter got an undeliverable
encoded-word address): the domain goes out in IDNA, and a non-ASCII local part is refused with a
clear reply state rather than sent as something no server delivers."""

from __future__ import annotations

import email

import pytest
from django.core import mail

from moderation.actions import Actor
from moderation.models import Reply, ReplyTemplate
from moderation.replies.outbound import UndeliverableAddress, build_email, delivery_address, do_queue_replies
from moderation.tasks import retry_replies, send_reply
from reports.models import Report, Reporter
from tests.moderation.replies.fixtures import make_moderator, report_from

IDN_SENDER = "Jürgen <juergen@bücher.example>"


def _eai_mail(sender: str) -> bytes:
    """A report as an internationalised client sends it: UTF-8 in the header (RFC 6532)."""
    return (
        f"From: {sender}\r\nTo: abuse@abusedesk.localhost\r\nSubject: report\r\nMessage-ID: <idn-1@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Block t.me/idn_channel please, it recruits.\r\n"
    ).encode()


@pytest.fixture
def actor(alice):
    return Actor(user=make_moderator(alice))


@pytest.fixture
def template(db):
    return ReplyTemplate.objects.get(name="blocked", language="en")


def _reply_to(ingest, actor, template, sender: str) -> Reply:
    report = Report.objects.select_related("case", "reporter").get(inbound=ingest(_eai_mail(sender)))
    (reply,) = do_queue_replies(report.case, template=template, reporters=[report.reporter], actor=actor)
    return reply


def test_a_reporter_with_an_idn_domain_is_answered_at_its_punycode_domain(ingest, actor, template):
    reply = _reply_to(ingest, actor, template, IDN_SENDER)
    assert reply.reporter.email == "juergen@bücher.example"  # kept as the reporter wrote it
    message = build_email(reply)
    assert message.to == ["juergen@xn--bcher-kva.example"]
    assert message.recipients() == ["juergen@xn--bcher-kva.example"]
    assert send_reply(reply.pk) == Reply.State.SENT
    (sent,) = mail.outbox
    parsed = email.message_from_bytes(sent.message().as_bytes())
    assert parsed["To"] == "juergen@xn--bcher-kva.example"
    assert "=?" not in parsed["To"]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("juergen@bücher.example", "juergen@xn--bcher-kva.example"),
        # UTS #46 maps case and the ideographic full stop; IDNA 2008 keeps ß (IDNA 2003 made it ss).
        ("Juergen@BÜCHER\u3002example", "Juergen@xn--bcher-kva.example"),
        ("info@straße.example", "info@xn--strae-oqa.example"),
        ("abuse@例子.广告", "abuse@xn--fsqu00a.xn--4rr70v"),
        ("plain@example.org", "plain@example.org"),
    ],
)
def test_delivery_address_encodes_the_domain_in_idna(address, expected):
    assert delivery_address(address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("jürgen@bücher.example", "non-ASCII characters before the @, which needs SMTPUTF8"),
        ("用户@例子.广告", "non-ASCII characters before the @, which needs SMTPUTF8"),
        ("a@ü" + "x" * 70 + ".example", "is not a valid internationalised domain name"),
        ("nobody", "has no domain"),
    ],
)
def test_delivery_address_refuses_what_cannot_be_written_in_ascii(address, message):
    with pytest.raises(UndeliverableAddress, match=message):
        delivery_address(address)


def test_a_non_ascii_local_part_fails_the_reply_at_once_with_the_reason(ingest, actor, template):
    reply = _reply_to(ingest, actor, template, "Jürgen <jürgen@bücher.example>")
    with pytest.raises(UndeliverableAddress):
        build_email(reply)
    assert send_reply(reply.pk) == Reply.State.FAILED
    reply.refresh_from_db()
    assert (reply.state, reply.attempts) == (Reply.State.FAILED, 1)
    assert reply.error == (
        "The address jürgen@bücher.example has non-ASCII characters before the @, which needs SMTPUTF8; "
        "the desk's mail backend does not offer it. Reply to this reporter another way."
    )
    assert retry_replies() == 0
    assert not mail.outbox
    assert Reporter.objects.get(pk=reply.reporter_id).email == "jürgen@bücher.example"


def test_an_idn_domain_written_as_an_encoded_word_is_refused_not_sent(ingest, actor, template):
    """Python's email package writes an IDN domain as an encoded word; intake keeps the address as
    written, and no server delivers it."""
    report = report_from(ingest, "Block t.me/idn_channel please, it recruits.", sender=IDN_SENDER)
    assert report.reporter.email == "juergen@=?utf-8?q?b=c3=bccher?=.example"
    (reply,) = do_queue_replies(report.case, template=template, reporters=[report.reporter], actor=actor)
    assert send_reply(reply.pk) == Reply.State.FAILED
    reply.refresh_from_db()
    assert reply.error == (
        "The address juergen@=?utf-8?q?b=c3=bccher?=.example contains an encoded word (=?...?=), "
        "which no mail server delivers."
    )
    assert not mail.outbox
