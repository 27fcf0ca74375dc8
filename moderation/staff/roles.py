"""Who may do what: roles are auth groups created by a migration."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

MODERATOR, LEAD, AUDITOR = "moderator", "lead", "auditor"
# Kept on the user object, like Django's own permission caches: a request asks several times and
# loads its user once, so a role change applies from the next request.
_CACHE = "_abusedesk_roles"


def roles_of(user: User | AnonymousUser) -> frozenset[str]:
    if not user.is_authenticated or not user.is_active or not user.is_staff:
        return frozenset()
    if user.is_superuser:
        return frozenset({MODERATOR, LEAD, AUDITOR})
    cache = vars(user)
    if _CACHE not in cache:
        cache[_CACHE] = frozenset(user.groups.values_list("name", flat=True))
    roles: frozenset[str] = cache[_CACHE]
    return roles


def can_view(user: User | AnonymousUser) -> bool:
    return bool(roles_of(user) & {MODERATOR, LEAD, AUDITOR})


def can_moderate(user: User | AnonymousUser) -> bool:
    return bool(roles_of(user) & {MODERATOR, LEAD})


def is_lead(user: User | AnonymousUser) -> bool:
    return LEAD in roles_of(user)


def can_audit(user: User | AnonymousUser) -> bool:
    return bool(roles_of(user) & {LEAD, AUDITOR})
