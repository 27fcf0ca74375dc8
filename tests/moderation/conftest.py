"""Workspace personas by role, and cases built through the real intake."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from reports.models import Case, InboundMessage
from tests.mail import build_mail


def _with_role(user: User, role: str) -> User:
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def moderator(alice: User) -> User:
    return _with_role(alice, "moderator")


@pytest.fixture
def other_moderator(bob: User) -> User:
    return _with_role(bob, "moderator")


@pytest.fixture
def lead(db: None) -> User:
    user = User.objects.create_user("lena-lead", "lead@desk.example", "lead-password", is_staff=True)
    return _with_role(user, "lead")


@pytest.fixture
def auditor(db: None) -> User:
    user = User.objects.create_user("audrey", "audrey@desk.example", "audrey-password", is_staff=True)
    return _with_role(user, "auditor")


@pytest.fixture
def staff_without_role(mallory: User) -> User:
    mallory.is_staff = True
    mallory.save(update_fields=["is_staff"])
    return mallory


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_moderator(moderator: User) -> Client:
    return _client_for(moderator)


@pytest.fixture
def as_lead(lead: User) -> Client:
    return _client_for(lead)


@pytest.fixture
def as_auditor(auditor: User) -> Client:
    return _client_for(auditor)


@pytest.fixture
def as_mallory(staff_without_role: User) -> Client:
    return _client_for(staff_without_role)


@pytest.fixture
def make_case(ingest: Callable[..., InboundMessage]) -> Callable[..., Case]:
    """A case from one mail through the real intake; each call needs its own Message-ID."""

    def _make(body: str = "Please block t.me/example_channel, it posts execution videos.", **mail: str) -> Case:
        message = ingest(build_mail(body, **mail))
        return message.report.case

    return _make


@pytest.fixture
def case(make_case: Callable[..., Case]) -> Case:
    return make_case()


@pytest.fixture
def two_entity_case(make_case: Callable[..., Case]) -> Case:
    return make_case("Both t.me/first_channel and t.me/second_channel post propaganda.", message_id="<two@example.org>")
