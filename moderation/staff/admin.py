"""Staff in Django admin: Django's user admin, with every change going through moderation.staff.

Roles are chosen as checkboxes (the three role groups) rather than through raw groups and
permissions; someone who has acted is deactivated, never deleted; a member's page shows their
recent actions and the history of their account, both read from the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from moderation.actions import Actor
from moderation.models import AuditEntry
from moderation.staff import actions as staff
from moderation.views import actor_of
from reports.admin import ReadOnlyAdmin

ROLE_CHOICES = [(name, name) for name in staff.ROLE_NAMES]

# Django's password view builds its form from the user and the POST data only; the admin binds
# who is acting here for the length of that one request.
_password_actor: ContextVar[Actor | None] = ContextVar("abusedesk_password_actor", default=None)


def _roles_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=_("Roles"),
        choices=ROLE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("moderator: works cases; lead: also unblocks and reads the audit log; auditor: reads only."),
    )


class StaffCreationForm(AdminUserCreationForm):
    roles = _roles_field()

    class Meta(AdminUserCreationForm.Meta):
        fields = ("username", "email")


class StaffChangeForm(UserChangeForm):
    roles = _roles_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["roles"].initial = staff.roles_of_member(self.instance)


class StaffPasswordForm(AdminPasswordChangeForm):
    """Django's admin password form, saved through do_reset_staff_password so it is audited."""

    def save(self, commit: bool = True) -> User:
        actor = _password_actor.get()
        if actor is None:
            raise RuntimeError("StaffPasswordForm is saved only from the staff admin's password view")
        password = self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        staff.do_reset_staff_password(self.user, password=password, actor=actor)
        return self.user


def _audit_table(entries: Iterable[AuditEntry], empty: str) -> SafeString:
    rows = [
        (
            f"{entry.created_at:%Y-%m-%d %H:%M}",
            reverse("admin:moderation_auditentry_change", args=[entry.pk]),
            entry.get_action_display(),
            entry.actor_label,
            entry.case or entry.entity or "",
        )
        for entry in entries
    ]
    if not rows:
        return format_html("<p>{}</p>", empty)
    body = format_html_join("", '<tr><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>', rows)
    return format_html(
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
        _("when"),
        _("action"),
        _("by"),
        _("on"),
        body,
    )


class StaffAdmin(UserAdmin):
    form = StaffChangeForm
    add_form = StaffCreationForm
    change_password_form = StaffPasswordForm
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Access"), {"fields": ("is_active", "is_staff", "is_superuser", "roles")}),
        (_("Audit log"), {"fields": ("recent_actions", "account_history")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "usable_password", "password1", "password2", "roles"),
            },
        ),
    )
    list_display = ("username", "email", "role_list", "is_active", "is_staff", "is_superuser", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    filter_horizontal = ()
    actions = ["deactivate_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> list[str]:
        fields = ["last_login", "date_joined", "recent_actions", "account_history"]
        if obj is not None and obj.pk == request.user.pk:
            # Nobody locks themselves out: another admin changes your access.
            fields += ["is_active", "is_staff", "is_superuser"]
        elif not getattr(request.user, "is_superuser", False):
            fields += ["is_staff", "is_superuser"]
        return fields

    def get_actions(
        self, request: HttpRequest, action_location: admin.ActionLocation = admin.ActionLocation.CHANGE_LIST
    ) -> dict[str, Any]:
        # Bulk deletion would skip the check for people who acted; they are deleted one by one.
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("roles"))
    def role_list(self, obj: User) -> str:
        return ", ".join(sorted(g.name for g in obj.groups.all() if g.name in staff.ROLE_NAMES))

    @admin.display(description=_("recent actions"))
    def recent_actions(self, obj: User) -> SafeString:
        return _audit_table(staff.recent_actions(obj), str(_("No actions in the audit log.")))

    @admin.display(description=_("account history"))
    def account_history(self, obj: User) -> SafeString:
        return _audit_table(staff.account_history(obj), str(_("No changes recorded.")))

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        """Each kind of change is its own action with its own audit entry, in admin's one transaction."""
        actor = actor_of(request)
        if not change:
            staff.do_create_staff_member(obj, roles=form.cleaned_data.get("roles", []), actor=actor)
            return
        profile = {field: form.cleaned_data[field] for field in form.changed_data if field in staff.PROFILE_FIELDS}
        if profile:
            staff.do_update_staff_member(obj, changes=profile, actor=actor)
        if "roles" in form.changed_data:
            staff.do_set_staff_roles(obj, roles=form.cleaned_data["roles"], actor=actor)
        if "is_active" in form.changed_data:
            if form.cleaned_data["is_active"]:
                staff.do_reactivate_staff(obj, actor=actor)
            else:
                staff.do_deactivate_staff(obj, actor=actor)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        token = _password_actor.set(actor_of(request))
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _password_actor.reset(token)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and staff.has_acted(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        user = self.get_object(request, unquote(object_id))
        if user is not None and staff.has_acted(user):
            self.message_user(
                request,
                _(
                    "%(user)s appears in the audit log or in decisions, so the account cannot be deleted. "
                    "Untick “Active” to deactivate it instead."
                )
                % {"user": user.get_username()},
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:auth_user_change", args=[user.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        staff.do_delete_staff_member(obj, actor=actor_of(request))

    @admin.action(description=_("Deactivate the selected staff members"), permissions=["change"])
    def deactivate_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        done = 0
        for user in queryset:
            try:
                if staff.do_deactivate_staff(user, actor=actor_of(request)):
                    done += 1
            except ValidationError as exc:
                self.message_user(request, f"{user.get_username()}: {'; '.join(exc.messages)}", messages.ERROR)
        self.message_user(request, _("Deactivated %(count)d account(s).") % {"count": done}, messages.SUCCESS)


class RoleGroupAdmin(ReadOnlyAdmin, GroupAdmin):
    """The role groups, to look at only. Roles are found by group name, so renaming "moderator"
    to "lead" would silently promote every moderator, and the three groups come from a migration;
    who holds a role is changed on the staff member's page, where it is audited."""


admin.site.unregister(User)
admin.site.register(User, StaffAdmin)
admin.site.unregister(Group)
admin.site.register(Group, RoleGroupAdmin)
