"""Throttled logins: django-axes' lock-out check, as the first authentication backend."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuse a locked-out username and address before any password is checked.

    Every login over HTTP (the desk's form, admin's form, DRF) passes its request. A caller without
    one, such as `Client.login()` in tests or a shell, has no address to throttle and is let through
    to the password check instead of failing with axes' "request required" error.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
