"""Staff accounts: every change an admin makes to a member of staff, each with one audit entry.

Roles are the auth groups moderator, lead and auditor (moderation.roles). Someone who has acted
(an audit entry or a decision names them) is never deleted: deactivating keeps the attribution,
and Django's session check refuses an inactive user at once. Entries about an account carry its
id as `data["target"]`, so its history can be read back (`account_history`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import ProtectedError, QuerySet

from moderation.actions import Actor
from moderation.audit import record
from moderation.models import AuditAction, AuditEntry, Decision
from moderation.staff.roles import AUDITOR, LEAD, MODERATOR

ROLE_NAMES = (MODERATOR, LEAD, AUDITOR)
PROFILE_FIELDS = ("username", "first_name", "last_name", "email", "is_staff", "is_superuser")
STAFF_ACTIONS = (
    AuditAction.STAFF_CREATED,
    AuditAction.STAFF_CHANGED,
    AuditAction.STAFF_ROLES_CHANGED,
    AuditAction.STAFF_DEACTIVATED,
    AuditAction.STAFF_REACTIVATED,
    AuditAction.STAFF_PASSWORD_RESET,
    AuditAction.STAFF_DELETED,
)


def roles_of_member(user: User) -> list[str]:
    """The member's roles by group membership (a superuser's implied roles are not listed)."""
    return sorted(user.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True))


def has_acted(user: User) -> bool:
    """Whether the audit log or a decision names this user as the one who acted."""
    return AuditEntry.objects.filter(actor=user).exists() or Decision.objects.filter(actor=user).exists()


def recent_actions(user: User, *, limit: int = 20) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(actor=user).select_related("case", "entity")[:limit]


def account_history(user: User, *, limit: int = 20) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(action__in=STAFF_ACTIONS, data__target=user.pk)[:limit]


def _check_roles(roles: Iterable[str]) -> list[str]:
    chosen = sorted(set(roles))
    unknown = [role for role in chosen if role not in ROLE_NAMES]
    if unknown:
        raise ValidationError(f"unknown role(s): {', '.join(unknown)}")
    return chosen


def _lock(user: User) -> User:
    return User.objects.select_for_update().get(pk=user.pk)


def _audit(action: AuditAction, actor: Actor, user: User, *, old: object, new: object) -> None:
    record(
        action,
        actor=actor.user,
        actor_label=actor.label,
        ip=actor.ip,
        data={"old": old, "new": new, "target": user.pk, "username": user.get_username()},
    )


def _refuse_on_self(user: User, actor: Actor, what: str) -> None:
    if actor.user is not None and actor.user.pk == user.pk:
        raise ValidationError(f"you cannot {what} your own account; ask another admin")


@transaction.atomic
def do_create_staff_member(user: User, *, roles: Iterable[str], actor: Actor) -> User:
    """Save a new member of staff, built by the caller with its password (or an unusable one) set."""
    chosen = _check_roles(roles)
    if user.pk is not None:
        raise ValueError("do_create_staff_member() takes a user that is not saved yet")
    if user.is_superuser and not getattr(actor.user, "is_superuser", False):
        raise PermissionDenied("only a superuser may create a superuser")
    user.is_staff = True
    user.save(force_insert=True)
    user.groups.set(Group.objects.filter(name__in=chosen))
    _audit(
        AuditAction.STAFF_CREATED,
        actor,
        user,
        old=None,
        new={
            "username": user.get_username(),
            "email": user.email,
            "is_staff": True,
            "is_superuser": user.is_superuser,
            "roles": chosen,
        },
    )
    return user


@transaction.atomic
def do_update_staff_member(user: User, *, changes: Mapping[str, object], actor: Actor) -> bool:
    """Change the member's name, e-mail, username or admin flags; False if nothing changed."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not a profile field: {', '.join(sorted(unknown))}")
    locked = _lock(user)
    changed = [field for field, value in changes.items() if getattr(locked, field) != value]
    if not changed:
        return False
    if {"is_staff", "is_superuser"} & set(changed):
        _refuse_on_self(locked, actor, "change the admin access of")
        if not getattr(actor.user, "is_superuser", False):
            raise PermissionDenied("only a superuser may change admin access")
    old = {field: getattr(locked, field) for field in changed}
    for field in changed:
        setattr(locked, field, changes[field])
    locked.save(update_fields=changed)
    for field in changed:
        setattr(user, field, changes[field])
    _audit(AuditAction.STAFF_CHANGED, actor, locked, old=old, new={field: changes[field] for field in changed})
    return True


@transaction.atomic
def do_set_staff_roles(user: User, *, roles: Iterable[str], actor: Actor) -> bool:
    """Make the member's roles exactly `roles`; other groups are kept. False if they already were."""
    chosen = _check_roles(roles)
    locked = _lock(user)
    old = roles_of_member(locked)
    if old == chosen:
        return False
    locked.groups.remove(*Group.objects.filter(name__in=set(old) - set(chosen)))
    locked.groups.add(*Group.objects.filter(name__in=set(chosen) - set(old)))
    _audit(AuditAction.STAFF_ROLES_CHANGED, actor, locked, old=old, new=chosen)
    return True


@transaction.atomic
def do_deactivate_staff(user: User, *, actor: Actor) -> bool:
    """Switch the account off: no login, its sessions stop working; its attribution stays."""
    locked = _lock(user)
    if not locked.is_active:
        return False
    _refuse_on_self(locked, actor, "deactivate")
    locked.is_active = user.is_active = False
    locked.save(update_fields=["is_active"])
    _audit(AuditAction.STAFF_DEACTIVATED, actor, locked, old={"is_active": True}, new={"is_active": False})
    return True


@transaction.atomic
def do_reactivate_staff(user: User, *, actor: Actor) -> bool:
    locked = _lock(user)
    if locked.is_active:
        return False
    locked.is_active = user.is_active = True
    locked.save(update_fields=["is_active"])
    _audit(AuditAction.STAFF_REACTIVATED, actor, locked, old={"is_active": False}, new={"is_active": True})
    return True


@transaction.atomic
def do_reset_staff_password(user: User, *, password: str | None, actor: Actor) -> None:
    """Set a new password, or none at all (password login off). The audit entry records which,
    never the password; the member's other sessions end, as with any password change."""
    locked = _lock(user)
    old_usable = locked.has_usable_password()
    if password is None:
        locked.set_unusable_password()
    else:
        locked.set_password(password)
    locked.save(update_fields=["password"])
    user.password = locked.password
    _audit(
        AuditAction.STAFF_PASSWORD_RESET,
        actor,
        locked,
        old={"usable_password": old_usable},
        new={"usable_password": password is not None},
    )


@transaction.atomic
def do_delete_staff_member(user: User, *, actor: Actor) -> None:
    """Delete an account that never acted (a mistaken creation); anyone else is deactivated instead."""
    locked = _lock(user)
    _refuse_on_self(locked, actor, "delete")
    if has_acted(locked):
        raise ValidationError(
            f"{locked.get_username()} appears in the audit log or in decisions; deactivate the account instead"
        )
    old = {"username": locked.get_username(), "email": locked.email, "roles": roles_of_member(locked)}
    _audit(AuditAction.STAFF_DELETED, actor, locked, old=old, new=None)
    try:
        with transaction.atomic():
            locked.delete()
    except ProtectedError:
        raise ValidationError(
            f"{locked.get_username()} is referred to by records that are kept; deactivate the account instead"
        ) from None
