"""The moderator workspace: one module per page. Shared here: who the requester is and may do."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from moderation.actions import Actor
from moderation.staff import roles


class AuthenticatedHttpRequest(HttpRequest):
    user: User
    htmx: HtmxDetails


@dataclass(frozen=True, slots=True)
class Abilities:
    """What the signed-in staff member may do; templates read it as `can`."""

    view: bool
    moderate: bool
    lead: bool
    audit: bool


def abilities(request: AuthenticatedHttpRequest) -> Abilities:
    user = request.user
    return Abilities(roles.can_view(user), roles.can_moderate(user), roles.is_lead(user), roles.can_audit(user))


def require_viewer(request: AuthenticatedHttpRequest) -> Abilities:
    can = abilities(request)
    if not can.view:
        raise PermissionDenied("no workspace role")
    return can


def require_moderator(request: AuthenticatedHttpRequest) -> Abilities:
    can = abilities(request)
    if not can.moderate:
        raise PermissionDenied("moderators and leads only")
    return can


def require_lead(request: AuthenticatedHttpRequest) -> Abilities:
    can = abilities(request)
    if not can.lead:
        raise PermissionDenied("leads only")
    return can


def actor_of(request: HttpRequest) -> Actor:
    """Who acts, for the audit log: the desk's views and the admin's pages alike (staff only)."""
    # REMOTE_ADDR only: a forwarded header is client-controlled unless a trusted proxy rewrites it.
    user = request.user if isinstance(request.user, User) else None
    return Actor(user, ip=request.META.get("REMOTE_ADDR") or None)
