"""API keys of the platform's systems: creation (shown once), revocation, and how a request proves one.

A key reads `<prefix>.<secret>`. The prefix is public (admins and logs recognise a key by it); only
a SHA-256 of the secret is stored, which is enough for 256 random bits: no password hashing needed.
Requests send `Authorization: Bearer <prefix>.<secret>`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from moderation.actions import Actor
from moderation.audit import record
from moderation.models import ApiKey, AuditAction
from moderation.staff import roles

if TYPE_CHECKING:
    # Not at run time: DRF imports this module while rest_framework.views is still loading.
    from rest_framework.views import APIView

PREFIX_TAG = "adk_"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,59}")
# last_used_at is for admins spotting dead keys; writing it on every request would cost a write each.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_MAX_SECRET_CHARS = 128

# Staff signed in to the browsable API act with their workspace role instead of a scope.
_ROLE_FOR_SCOPE: dict[str, Callable[[User | AnonymousUser], bool]] = {
    ApiKey.Scope.READ: roles.can_view,
    ApiKey.Scope.BLOCKLIST: roles.can_view,
    ApiKey.Scope.REPORT: roles.can_moderate,
    ApiKey.Scope.DECIDE: roles.can_moderate,
    ApiKey.Scope.AUDIT: roles.can_audit,
}


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_new_key(name: str, scopes: Iterable[str]) -> list[str]:
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationError(
            "a key name is 1-60 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    wanted = sorted(set(scopes))
    unknown = [scope for scope in wanted if scope not in ApiKey.Scope.values]
    if unknown:
        raise ValidationError(f"unknown scopes: {', '.join(unknown)} (known: {', '.join(ApiKey.Scope.values)})")
    if not wanted:
        raise ValidationError("a key needs at least one scope")
    if ApiKey.objects.filter(name=name).exists():
        raise ValidationError(f"an API key named {name!r} exists already")
    return wanted


@transaction.atomic
def do_create_api_key(name: str, *, scopes: Iterable[str], actor: Actor) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored and cannot be shown again."""
    wanted = _check_new_key(name, scopes)
    secret = secrets.token_urlsafe(32)
    for _attempt in range(5):
        prefix = PREFIX_TAG + secrets.token_hex(4)
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    name=name,
                    prefix=prefix,
                    secret_hash=hash_secret(secret),
                    scopes=wanted,
                    created_by=actor.user,
                    created_at=timezone.now(),
                )
            break
        except IntegrityError:
            # 32 random bits of prefix collide rarely; a name taken meanwhile fails the check again.
            _check_new_key(name, wanted)
    else:
        raise RuntimeError("could not find a free API key prefix")
    record(
        AuditAction.API_KEY_CREATED,
        actor=actor.user,
        actor_label=actor.label,
        ip=actor.ip,
        data={"old": None, "new": {"name": key.name, "prefix": key.prefix, "scopes": wanted}},
    )
    return key, f"{key.prefix}.{secret}"


@transaction.atomic
def do_revoke_api_key(key: ApiKey, *, actor: Actor) -> bool:
    """Revoke a key for good; revoking a revoked key changes and records nothing."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is not None:
        return False
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    record(
        AuditAction.API_KEY_REVOKED,
        actor=actor.user,
        actor_label=actor.label,
        ip=actor.ip,
        data={"old": {"revoked": False}, "new": {"revoked": True}, "name": key.name, "prefix": key.prefix},
    )
    return True


def key_for_credentials(credentials: str) -> ApiKey:
    """The active key these credentials prove, or AuthenticationFailed."""
    prefix, dot, secret = credentials.partition(".")
    if not dot or not prefix or not secret or len(prefix) > 12 or len(secret) > _MAX_SECRET_CHARS:
        raise AuthenticationFailed("The API key is malformed: expected <prefix>.<secret>.", code="malformed_key")
    key = ApiKey.objects.filter(prefix=prefix).first()
    # Constant-time comparison of the hashes; the prefix is public, so looking it up leaks nothing.
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        raise AuthenticationFailed("The API key is not valid.", code="invalid_key")
    if key.revoked_at is not None:
        raise AuthenticationFailed("The API key was revoked.", code="revoked_key")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <prefix>.<secret>`. Other schemes are left to the next authenticator."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        scheme, _, credentials = get_authorization_header(request).partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        try:
            text = credentials.decode("ascii").strip()
        except UnicodeDecodeError:
            raise AuthenticationFailed("The API key is malformed.", code="malformed_key") from None
        # A key is no Django user: request.user stays anonymous and request.auth holds the key.
        return AnonymousUser(), key_for_credentials(text)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="abusedesk"'


def api_key_of(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def api_actor(request: Request) -> Actor:
    """The audit log's actor for an API request: the key by name, or the signed-in staff member."""
    ip = request.META.get("REMOTE_ADDR") or None  # never a forwarded header: clients choose those
    key = api_key_of(request)
    if key is not None:
        return Actor(None, ip=ip, label=f"api:{key.name}")
    return Actor(request.user, ip=ip)


class HasRequiredScope(BasePermission):
    """Each view names one scope in `required_scope`; a view that names none is refused (fail closed).

    One class reading the view's scope, rather than a class per scope, because reports/api.py must
    not import moderation (DESIGN layering): it gets this check from settings and only names a string.
    """

    message = "Not allowed."

    def has_permission(self, request: Request, view: APIView) -> bool:
        scope: str | None = getattr(view, "required_scope", None)
        if scope is None or scope not in ApiKey.Scope.values:
            return False
        key = api_key_of(request)
        if key is not None:
            allowed = scope in key.scopes
            self.message = f"This API key lacks the scope {scope!r}."
        else:
            allowed = _ROLE_FOR_SCOPE[scope](request.user)
            self.message = f"Your role does not include what the scope {scope!r} allows."
        self.code = "missing_scope"
        return allowed


class ApiKeyThrottle(SimpleRateThrottle):
    """Per key (by prefix), or per signed-in user; the rate is REST_FRAMEWORK's "api" throttle rate."""

    scope = "api"

    def get_rate(self) -> str | None:
        # Read at request time (DRF binds THROTTLE_RATES at import), so settings overrides apply.
        rate: str | None = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return rate

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        key = api_key_of(request)
        if key is not None:
            ident = f"key:{key.prefix}"
        elif request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "moderation.integrations.apikeys.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "<prefix>.<secret>",
            "description": "A per-integration API key, shown once when created. Each operation needs one scope.",
        }
