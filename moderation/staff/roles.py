"""Who may do what: roles are auth groups created by a migration."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

MODERATOR, LEAD, AUDITOR = "moderator", "lead", "auditor"


def roles_of(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    if not user.is_authenticated or not user.is_active or not getattr(user, "is_staff", False):
        return frozenset()
    if getattr(user, "is_superuser", False):
        return frozenset({MODERATOR, LEAD, AUDITOR})
    cached = getattr(user, "_abusedesk_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))  # type: ignore[union-attr]
        user._abusedesk_roles = cached  # type: ignore[union-attr]
    return cached


def can_view(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(roles_of(user) & {MODERATOR, LEAD, AUDITOR})


def can_moderate(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(roles_of(user) & {MODERATOR, LEAD})


def is_lead(user: AbstractBaseUser | AnonymousUser) -> bool:
    return LEAD in roles_of(user)


def can_audit(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(roles_of(user) & {LEAD, AUDITOR})
