"""django-q2 in admin is read-only: a superuser can look at schedules, the queue and task results,
but cannot schedule a function (issue 11: `os.mkdir` ran in the worker), edit, drop or rerun one."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django_q.models import Failure, OrmQ, Schedule, Success

from moderation.models import AuditEntry

RETRY = "abusedesk: retry replies"


@pytest.fixture
def as_superuser(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@desk.example", "root-password"))
    return client


@pytest.fixture
def schedule(db: None) -> Schedule:
    return Schedule.objects.get(name=RETRY)  # created by a migration, like every schedule of the desk


def _mkdir_schedule(tmp_path: object) -> dict[str, str]:
    return {
        "name": "pwn",
        "func": "os.mkdir",
        "args": f"'{tmp_path}/pwned'",
        "schedule_type": Schedule.ONCE,
        "repeats": "-1",
        "next_run_0": "2026-12-01",
        "next_run_1": "00:00:00",
    }


def test_the_schedule_list_and_each_schedule_stay_readable(as_superuser: Client, schedule: Schedule) -> None:
    listing = as_superuser.get("/admin/django_q/schedule/")
    assert listing.status_code == 200
    assert RETRY in listing.content.decode()
    page = as_superuser.get(f"/admin/django_q/schedule/{schedule.pk}/change/")
    assert page.status_code == 200
    assert "moderation.tasks.retry_replies" in page.content.decode()
    assert 'name="func"' not in page.content.decode() and 'name="_save"' not in page.content.decode()


def test_adding_a_schedule_is_refused(as_superuser: Client, schedule: Schedule, tmp_path: object) -> None:
    assert as_superuser.get("/admin/django_q/schedule/add/").status_code == 403
    assert as_superuser.post("/admin/django_q/schedule/add/", _mkdir_schedule(tmp_path)).status_code == 403
    assert not Schedule.objects.filter(func="os.mkdir").exists()
    assert not AuditEntry.objects.exists()


def test_changing_a_schedule_is_refused(as_superuser: Client, schedule: Schedule, tmp_path: object) -> None:
    response = as_superuser.post(f"/admin/django_q/schedule/{schedule.pk}/change/", _mkdir_schedule(tmp_path))
    assert response.status_code == 403
    schedule.refresh_from_db()
    assert (schedule.name, schedule.func) == (RETRY, "moderation.tasks.retry_replies")


def test_deleting_a_schedule_is_refused(as_superuser: Client, schedule: Schedule) -> None:
    assert as_superuser.post(f"/admin/django_q/schedule/{schedule.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Schedule.objects.filter(pk=schedule.pk).exists()


@pytest.mark.parametrize("model", [Schedule, Success, Failure, OrmQ])
def test_no_django_q_model_can_be_added_changed_deleted_or_rerun_in_admin(db: None, model: type) -> None:
    superuser = User.objects.create_superuser("root", "root@desk.example", "root-password")
    request = RequestFactory().get("/admin/")
    request.user = superuser
    model_admin = admin.site.get_model_admin(model)
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.get_actions(request) == {}
