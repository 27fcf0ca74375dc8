"""Staff administration in Django admin, login lock-out (django-axes) and OTP for superusers (django-otp)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

from moderation.actions import Actor, do_add_note
from moderation.models import AuditAction, AuditEntry
from moderation.staff import actions as staff
from reports.models import Case, Reporter

NEW_PASSWORD = "correct-Horse-battery-7"


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("root", "root@desk.example", "root-password")


@pytest.fixture
def as_admin(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _change_form(user: User, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
        "roles": staff.roles_of_member(user),
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value not in ("", None)}


def _only_entry() -> AuditEntry:
    return AuditEntry.objects.get()


# --- Creating staff and assigning roles -----------------------------------------------------------


def test_a_superuser_creates_a_staff_member_with_roles(as_admin: Client, admin_user: User) -> None:
    response = as_admin.post(
        "/admin/auth/user/add/",
        {
            "username": "sam",
            "email": "sam@desk.example",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "roles": ["moderator", "auditor"],
        },
    )
    assert response.status_code == 302
    sam = User.objects.get(username="sam")
    assert sam.is_staff and sam.is_active and not sam.is_superuser
    assert sam.check_password(NEW_PASSWORD)
    assert staff.roles_of_member(sam) == ["auditor", "moderator"]
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.ip) == (AuditAction.STAFF_CREATED, admin_user, "127.0.0.1")
    assert entry.data == {
        "old": None,
        "new": {
            "username": "sam",
            "email": "sam@desk.example",
            "is_staff": True,
            "is_superuser": False,
            "roles": ["auditor", "moderator"],
        },
        "target": sam.pk,
        "username": "sam",
    }
    assert NEW_PASSWORD not in json.dumps(entry.data)


def test_changing_roles_in_admin_is_audited_once_with_old_and_new(
    as_admin: Client, admin_user: User, moderator: User
) -> None:
    response = as_admin.post(f"/admin/auth/user/{moderator.pk}/change/", _change_form(moderator, roles=["lead"]))
    assert response.status_code == 302
    assert staff.roles_of_member(moderator) == ["lead"]
    entry = _only_entry()
    assert (entry.action, entry.actor) == (AuditAction.STAFF_ROLES_CHANGED, admin_user)
    assert entry.data == {"old": ["moderator"], "new": ["lead"], "target": moderator.pk, "username": "alice"}


def test_changing_roles_and_email_records_one_entry_for_each(as_admin: Client, moderator: User) -> None:
    as_admin.post(
        f"/admin/auth/user/{moderator.pk}/change/",
        _change_form(moderator, roles=["moderator", "lead"], email="alice@new.example"),
    )
    changed, roles = AuditEntry.objects.order_by("id")
    assert (changed.action, changed.data["old"], changed.data["new"]) == (
        AuditAction.STAFF_CHANGED,
        {"email": "alice@desk.example"},
        {"email": "alice@new.example"},
    )
    assert (roles.action, roles.data["old"], roles.data["new"]) == (
        AuditAction.STAFF_ROLES_CHANGED,
        ["moderator"],
        ["lead", "moderator"],
    )


def test_saving_a_member_unchanged_records_nothing(as_admin: Client, moderator: User) -> None:
    response = as_admin.post(f"/admin/auth/user/{moderator.pk}/change/", _change_form(moderator))
    assert response.status_code == 302
    assert not AuditEntry.objects.exists()


def test_an_unknown_role_is_refused(as_admin: Client, moderator: User) -> None:
    response = as_admin.post(f"/admin/auth/user/{moderator.pk}/change/", _change_form(moderator, roles=["root"]))
    assert response.status_code == 200
    assert "roles" in response.context["adminform"].form.errors
    assert not AuditEntry.objects.exists()


def test_staff_without_admin_rights_cannot_open_the_staff_admin(as_moderator: Client) -> None:
    assert as_moderator.get("/admin/auth/user/").status_code == 403


# --- Deactivation instead of deletion -------------------------------------------------------------


def test_deactivating_in_admin_is_audited_and_ends_the_members_sessions(
    as_admin: Client, admin_user: User, moderator: User, as_moderator: Client
) -> None:
    assert as_moderator.get("/").status_code == 200
    as_admin.post(f"/admin/auth/user/{moderator.pk}/change/", _change_form(moderator, is_active=""))
    moderator.refresh_from_db()
    assert not moderator.is_active
    entry = _only_entry()
    assert (entry.action, entry.actor) == (AuditAction.STAFF_DEACTIVATED, admin_user)
    assert entry.data == {
        "old": {"is_active": True},
        "new": {"is_active": False},
        "target": moderator.pk,
        "username": "alice",
    }
    assert as_moderator.get("/").status_code == 302


def test_the_bulk_action_deactivates_and_audits_each_member(
    as_admin: Client, moderator: User, other_moderator: User
) -> None:
    as_admin.post(
        "/admin/auth/user/",
        {"action": "deactivate_selected", "_selected_action": [moderator.pk, other_moderator.pk]},
    )
    assert not User.objects.filter(pk__in=[moderator.pk, other_moderator.pk], is_active=True).exists()
    assert sorted(AuditEntry.objects.values_list("action", "data__username")) == [
        (AuditAction.STAFF_DEACTIVATED, "alice"),
        (AuditAction.STAFF_DEACTIVATED, "bob"),
    ]


def test_deleting_a_member_who_acted_is_refused_with_a_message(as_admin: Client, moderator: User, case: Case) -> None:
    do_add_note(case, text="Looks like propaganda.", actor=Actor(moderator))
    before = AuditEntry.objects.count()
    response = as_admin.post(f"/admin/auth/user/{moderator.pk}/delete/", {"post": "yes"}, follow=True)
    assert User.objects.filter(pk=moderator.pk).exists()
    assert "cannot be deleted" in response.content.decode()
    assert response.redirect_chain[-1][0] == f"/admin/auth/user/{moderator.pk}/change/"
    assert AuditEntry.objects.count() == before
    page = as_admin.get(f"/admin/auth/user/{moderator.pk}/change/").content.decode()
    assert f"/admin/auth/user/{moderator.pk}/delete/" not in page


def test_a_member_who_never_acted_can_be_deleted_and_it_is_audited(
    as_admin: Client, admin_user: User, moderator: User
) -> None:
    response = as_admin.post(f"/admin/auth/user/{moderator.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=moderator.pk).exists()
    entry = _only_entry()
    assert (entry.action, entry.actor) == (AuditAction.STAFF_DELETED, admin_user)
    assert entry.data == {
        "old": {"username": "alice", "email": "alice@desk.example", "roles": ["moderator"]},
        "new": None,
        "target": moderator.pk,
        "username": "alice",
    }


def test_nobody_deactivates_or_deletes_their_own_account(admin_user: User) -> None:
    with pytest.raises(ValidationError):
        staff.do_deactivate_staff(admin_user, actor=Actor(admin_user))
    with pytest.raises(ValidationError):
        staff.do_delete_staff_member(admin_user, actor=Actor(admin_user))
    assert not AuditEntry.objects.exists()


def test_an_admin_cannot_untick_their_own_access_in_the_form(as_admin: Client, admin_user: User) -> None:
    form = as_admin.get(f"/admin/auth/user/{admin_user.pk}/change/").context["adminform"].form
    assert not {"is_active", "is_staff", "is_superuser"} & set(form.fields)


# --- Passwords --------------------------------------------------------------------------------------


def test_a_password_reset_in_admin_works_and_is_audited_without_the_password(
    as_admin: Client, admin_user: User, moderator: User
) -> None:
    response = as_admin.post(
        f"/admin/auth/user/{moderator.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    moderator.refresh_from_db()
    assert moderator.check_password(NEW_PASSWORD)
    entry = _only_entry()
    assert (entry.action, entry.actor) == (AuditAction.STAFF_PASSWORD_RESET, admin_user)
    assert entry.data == {
        "old": {"usable_password": True},
        "new": {"usable_password": True},
        "target": moderator.pk,
        "username": "alice",
    }
    assert NEW_PASSWORD not in json.dumps(entry.data)
    assert moderator.password not in json.dumps(entry.data)


def test_disabling_password_login_in_admin_is_audited(as_admin: Client, moderator: User) -> None:
    as_admin.post(f"/admin/auth/user/{moderator.pk}/password/", {"usable_password": "false", "unset-password": "1"})
    moderator.refresh_from_db()
    assert not moderator.has_usable_password()
    assert _only_entry().data["new"] == {"usable_password": False}


def test_a_mismatched_password_changes_nothing(as_admin: Client, moderator: User) -> None:
    response = as_admin.post(
        f"/admin/auth/user/{moderator.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"},
    )
    assert response.status_code == 200
    moderator.refresh_from_db()
    assert moderator.check_password("alice-password")
    assert not AuditEntry.objects.exists()


# --- A member's page shows the audit log ----------------------------------------------------------


def test_a_members_page_shows_their_recent_actions_and_account_history(
    as_admin: Client, moderator: User, case: Case
) -> None:
    do_add_note(case, text="Looks like propaganda.", actor=Actor(moderator))
    staff.do_set_staff_roles(moderator, roles=["lead"], actor=Actor(None, label="test"))
    page = as_admin.get(f"/admin/auth/user/{moderator.pk}/change/").content.decode()
    note = AuditEntry.objects.get(action=AuditAction.CASE_NOTE_ADDED)
    roles = AuditEntry.objects.get(action=AuditAction.STAFF_ROLES_CHANGED)
    assert f"/admin/moderation/auditentry/{note.pk}/change/" in page
    assert f">{case.reference}<" in page
    assert f"/admin/moderation/auditentry/{roles.pk}/change/" in page
    assert "staff roles changed" in page


# --- Login hardening: django-axes -------------------------------------------------------------------


@pytest.mark.parametrize("login_url", ["/login/", "/admin/login/"])
def test_repeated_failures_lock_out_that_username_from_that_address(
    client: Client, moderator: User, settings: Any, login_url: str
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post(login_url, {"username": "alice", "password": "wrong"})
    response = client.post(login_url, {"username": "alice", "password": "alice-password"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # The lock is on the pair: the same account from another address still signs in.
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert other.post(login_url, {"username": "alice", "password": "alice-password"}).status_code == 302


def test_fewer_failures_than_the_limit_do_not_lock_out(client: Client, moderator: User, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        client.post("/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/login/", {"username": "alice", "password": "alice-password"}).status_code == 302


def test_login_without_a_request_still_checks_the_password(client: Client, moderator: User) -> None:
    assert client.login(username="alice", password="alice-password") is True
    assert client.login(username="alice", password="wrong") is False


# --- Login hardening: django-otp for superusers ---------------------------------------------------


def test_a_superuser_without_otp_cannot_use_admin_when_it_is_required(
    as_admin: Client, admin_user: User, settings: Any
) -> None:
    settings.ABUSEDESK_REQUIRE_OTP_FOR_SUPERUSERS = True
    response = as_admin.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert as_admin.get("/admin/auth/user/").status_code == 302
    # A password alone does not get them in either.
    response = Client().post("/admin/login/", {"username": "root", "password": "root-password", "next": "/admin/"})
    assert response.status_code == 200
    assert "no device registered" in response.content.decode()


def test_a_superuser_with_a_verified_totp_device_can_use_admin(admin_user: User, settings: Any) -> None:
    settings.ABUSEDESK_REQUIRE_OTP_FOR_SUPERUSERS = True
    device = TOTPDevice.objects.create(user=admin_user, name="phone", confirmed=True)
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    token, wrong = (f"{value % 10**device.digits:0{device.digits}d}" for value in (code, code + 1))
    client = Client()
    login = {"username": "root", "password": "root-password", "otp_device": device.persistent_id, "next": "/admin/"}
    assert client.post("/admin/login/", {**login, "otp_token": wrong}).status_code == 200
    assert client.get("/admin/").status_code == 302
    device.throttle_reset()  # a failure makes django-otp wait a second before the next try
    response = client.post("/admin/login/", {**login, "otp_token": token})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_superuser_uses_admin_without_otp_when_it_is_not_required(as_admin: Client, settings: Any) -> None:
    settings.ABUSEDESK_REQUIRE_OTP_FOR_SUPERUSERS = False
    assert as_admin.get("/admin/").status_code == 200


def test_staff_who_registered_a_device_must_use_it_for_admin(
    as_moderator: Client, moderator: User, settings: Any
) -> None:
    settings.ABUSEDESK_REQUIRE_OTP_FOR_SUPERUSERS = True
    assert as_moderator.get("/admin/").status_code == 200
    TOTPDevice.objects.create(user=moderator, name="phone", confirmed=True)
    assert as_moderator.get("/admin/").status_code == 302


def test_an_admin_registers_a_totp_device_for_a_member_and_sees_its_qr_code(
    as_admin: Client, moderator: User, settings: Any
) -> None:
    settings.ABUSEDESK_REQUIRE_OTP_FOR_SUPERUSERS = False
    response = as_admin.post(
        "/admin/otp_totp/totpdevice/add/",
        {
            "user": moderator.pk,
            "name": "phone",
            "key": default_key(),
            "step": 30,
            "t0": 0,
            "digits": 6,
            "tolerance": 1,
            "drift": 0,
            "throttling_failure_count": 0,
            "confirmed": "on",
        },
    )
    device = TOTPDevice.objects.get(user=moderator)
    assert response.status_code == 302
    qr = as_admin.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/")
    assert qr.status_code == 200
    assert qr["Content-Type"].startswith("image/svg+xml")


# --- Reporters and role groups -----------------------------------------------------------------


def test_marking_a_reporter_trusted_in_admin_is_audited(as_admin: Client, admin_user: User) -> None:
    now = timezone.now()
    reporter = Reporter.objects.create(email="ngo@example.org", first_seen=now, last_seen=now)
    url = f"/admin/reports/reporter/{reporter.pk}/change/"
    assert as_admin.post(url, {"trusted": "on"}).status_code == 302
    reporter.refresh_from_db()
    assert (reporter.trusted, reporter.muted) == (True, False)
    entry = _only_entry()
    assert (entry.action, entry.actor, entry.data) == (
        AuditAction.REPORTER_FLAGS_CHANGED,
        admin_user,
        {
            "reporter": reporter.pk,
            "email": "ngo@example.org",
            "old": {"trusted": False, "muted": False},
            "new": {"trusted": True, "muted": False},
        },
    )
    # Saving again unchanged records nothing more.
    assert as_admin.post(url, {"trusted": "on"}).status_code == 302
    assert AuditEntry.objects.count() == 1


def test_role_groups_are_read_only_in_admin(as_admin: Client) -> None:
    group = Group.objects.get(name="moderator")
    url = f"/admin/auth/group/{group.pk}/change/"
    assert as_admin.get(url).status_code == 200  # to look at
    assert as_admin.post(url, {"name": "lead"}).status_code == 403
    assert as_admin.get("/admin/auth/group/add/").status_code == 403
    assert as_admin.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Group.objects.filter(name="moderator").exists()
    assert not AuditEntry.objects.exists()
