"""The desk's admin site: Django's, plus a one-time code for superusers when configured.

With ABUSEDESK_REQUIRE_OTP_FOR_SUPERUSERS on, a superuser is let into admin only in a session
verified by one of their django-otp devices (TOTP, or a static backup token). Other staff log in
with a password, unless they have registered a device, which admin then asks for as well. The
first superuser gets a device with `manage.py addstatictoken <username>` (django-otp), signs in
with that token and registers a TOTP device under "TOTP devices".
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_otp import user_has_device
from django_otp.admin import OTPAdminAuthenticationForm


def otp_required(user: User | AnonymousUser) -> bool:
    """Whether admin must see a session verified by an OTP device for this user."""
    if not user.is_authenticated:
        return False
    if user.is_superuser and settings.ABUSEDESK_REQUIRE_OTP_FOR_SUPERUSERS:
        return True
    return user_has_device(user, confirmed=True)


class DeskAdminAuthenticationForm(OTPAdminAuthenticationForm):
    """Admin's login form: the password, then a token only from those who must give one."""

    no_device_message = _(
        "Admin requires a one-time code for this account, and it has no device registered. Ask another "
        "superuser to register one, or run manage.py addstatictoken with your username."
    )

    def clean(self) -> dict[str, Any]:
        # Skips OTPAdminAuthenticationForm.clean, which asks every user for a token.
        cleaned = super(OTPAdminAuthenticationForm, self).clean()
        user = self.get_user()
        if user is not None and otp_required(user):
            if not user_has_device(user, confirmed=True):
                raise forms.ValidationError(self.no_device_message, code="no_device")
            self.clean_otp(user)
        return cleaned


class DeskAdminSite(admin.AdminSite):
    site_header = _("abusedesk administration")
    site_title = _("abusedesk admin")
    login_form = DeskAdminAuthenticationForm
    login_template = "otp/admin111/login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        if not otp_required(request.user):
            return True
        is_verified = getattr(request.user, "is_verified", None)
        return bool(is_verified and is_verified())
