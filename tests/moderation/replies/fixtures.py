"""Helpers shared by the reply, audit and action tests (plain functions, not fixtures: the
workspace tests own tests/moderation/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import Group, User

from moderation.models import AuditEntry
from reports.models import InboundMessage, Report
from tests.mail import build_mail


def report_from(
    ingest: Callable[..., InboundMessage],
    body: str = "Please block t.me/example_channel, it posts execution videos.",
    *,
    sender: str = "Reporter <reporter@example.org>",
    message_id: str = "<report-1@example.org>",
    **kwargs: object,
) -> Report:
    """A report as intake makes it, from a real MIME message."""
    inbound = ingest(build_mail(body, sender=sender, message_id=message_id, **kwargs))
    return Report.objects.select_related("case", "reporter").get(inbound=inbound)


def make_lead(user: User) -> User:
    user.groups.add(Group.objects.get(name="lead"))
    return User.objects.get(pk=user.pk)


def make_moderator(user: User) -> User:
    user.groups.add(Group.objects.get(name="moderator"))
    return User.objects.get(pk=user.pk)


def only_entry() -> AuditEntry:
    """The one audit entry a state change must have written."""
    entries = list(AuditEntry.objects.all())
    assert len(entries) == 1, entries
    return entries[0]
