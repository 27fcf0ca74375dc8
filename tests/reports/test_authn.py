"""A From address counts as verified only on a trusted receiver's DMARC pass (SECURITY rule 4)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from reports.authn import from_verified
from reports.models import Case, Report, Reporter
from tests.mail import build_mail

PASS = {"authserv-id": "mx.desk.example", "spf": "pass", "dkim": "pass", "dmarc": "pass"}


@pytest.mark.parametrize(
    ("trusted", "source", "results", "verified"),
    [
        ([], "smtp", PASS, False),  # nothing configured: nothing is verified
        (["mx.desk.example"], "smtp", PASS, True),
        (["MX.Desk.Example"], "webhook:postmark", {**PASS, "authserv-id": "mx.desk.example 1"}, True),
        (["mx.desk.example"], "smtp", {**PASS, "dmarc": "fail"}, False),
        (["mx.desk.example"], "smtp", {**PASS, "dmarc": "none"}, False),
        (["mx.desk.example"], "smtp", {"authserv-id": "mx.desk.example", "dkim": "pass"}, False),
        (["mx.desk.example"], "smtp", {**PASS, "authserv-id": "mx.evil.example"}, False),
        (["mx.desk.example"], "smtp", {}, False),
        # A provider's verdict counts only on the path the provider sits in front of.
        (["webhook:amazon_ses=amazonses.com"], "webhook:amazon_ses", {**PASS, "authserv-id": "amazonses.com"}, True),
        (["webhook:amazon_ses=amazonses.com"], "smtp", {**PASS, "authserv-id": "amazonses.com"}, False),
    ],
)
def test_from_verified(settings, trusted, source, results, verified):
    settings.ABUSEDESK_AUTHSERV_IDS = trusted
    assert from_verified(source, results) is verified


def _trusted_flagger_mail(authentication_results: str) -> bytes:
    return build_mail(
        "Block t.me/fast_tracked_channel, it recruits fighters.",
        sender="Trusted NGO <flagger@ngo.example>",
        headers={"Authentication-Results": authentication_results},
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("authentication_results", "priority", "verified"),
    [
        ("mx.desk.example; spf=pass smtp.mailfrom=ngo.example; dmarc=pass header.from=ngo.example", "high", True),
        # Written by the sender: the receiver is not one we trust, so the From is only a claim.
        ("mx.evil.example; dmarc=pass header.from=ngo.example", "normal", False),
        ("mx.desk.example; spf=fail smtp.mailfrom=evil.example; dmarc=fail header.from=ngo.example", "normal", False),
    ],
)
def test_a_trusted_flaggers_mail_is_fast_tracked_only_with_a_verified_from(
    settings, ingest, authentication_results, priority, verified
):
    settings.ABUSEDESK_AUTHSERV_IDS = ["mx.desk.example"]
    Reporter.objects.create(
        email="flagger@ngo.example", trusted=True, first_seen=timezone.now(), last_seen=timezone.now()
    )
    report = ingest(_trusted_flagger_mail(authentication_results)).report
    assert report.from_verified is verified
    assert report.case.priority == {"high": Case.Priority.HIGH, "normal": Case.Priority.NORMAL}[priority]


@pytest.mark.django_db
def test_the_verdict_is_summarised_for_moderators(settings, ingest):
    settings.ABUSEDESK_AUTHSERV_IDS = ["mx.desk.example"]
    report = ingest(_trusted_flagger_mail("mx.desk.example; spf=pass; dkim=fail; dmarc=pass")).report
    assert report.auth_summary == "mx.desk.example: spf=pass, dkim=fail, dmarc=pass"
    assert Report(auth_results={}).auth_summary == "no Authentication-Results field"
