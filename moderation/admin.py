"""Django admin for moderation data. The audit log and decisions are read-only evidence."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from moderation.actions import do_set_reporter_flags
from moderation.models import AuditEntry, Decision, Note, Reply, ReplyTemplate
from moderation.replies.templates import do_save_reply_template
from moderation.views import actor_of
from reports.admin import ReadOnlyAdmin
from reports.models import Reporter


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_label", "action", "case", "entity", "ip"]
    list_filter = ["action"]
    search_fields = ["actor_label", "case__reference", "entity__url"]
    date_hierarchy = "created_at"
    list_select_related = ["case", "entity"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "entity", "case", "category", "decline_reason", "actor"]
    list_filter = ["kind", "category", "decline_reason"]
    search_fields = ["entity__url", "case__reference", "statement"]
    list_select_related = ["entity", "case", "actor"]


@admin.register(Reply)
class ReplyAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "case", "reporter", "state", "automatic", "attempts", "sent_at"]
    list_filter = ["state", "automatic"]
    search_fields = ["message_id", "reporter__email", "case__reference"]
    list_select_related = ["case", "reporter"]


@admin.register(Note)
class NoteAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "case", "author"]
    list_select_related = ["case", "author"]


@admin.register(ReplyTemplate)
class ReplyTemplateAdmin(admin.ModelAdmin):
    """Saving goes through do_save_reply_template, so admin edits are validated and audited."""

    list_display = ["name", "language", "purpose", "active", "updated_at"]
    list_filter = ["purpose", "language", "active"]
    search_fields = ["name", "subject", "body"]
    fields = ["name", "purpose", "language", "subject", "body", "active"]

    def save_model(self, request: HttpRequest, obj: ReplyTemplate, form: object, change: bool) -> None:
        do_save_reply_template(obj, actor=actor_of(request))

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Sent replies point at their template; retire a template by unticking "active".
        return False


# Staff (Django's user admin, replaced), enforcement webhooks and django-q2's models (read-only)
# live in their own modules; importing them here registers them with the admin site.
from moderation.integrations import admin as integrations_admin  # noqa: E402, F401
from moderation.known_content import admin as known_content_admin  # noqa: E402, F401
from moderation.staff import admin as staff_admin  # noqa: E402, F401
from moderation.staff import tasks_admin  # noqa: E402, F401


@admin.register(Reporter)
class ReporterAdmin(admin.ModelAdmin):
    """Trusted-flagger and muted flags are the desk's own settings about a reporter; changing them
    is an audited action, like every other state change."""

    list_display = ["email", "display_name", "language", "report_count", "trusted", "muted", "last_seen"]
    list_filter = ["trusted", "muted", "language"]
    search_fields = ["email", "display_name"]
    fields = ["email", "display_name", "language", "report_count", "trusted", "muted", "first_seen", "last_seen"]
    readonly_fields = ["email", "display_name", "language", "report_count", "first_seen", "last_seen"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Reporter, form: object, change: bool) -> None:
        do_set_reporter_flags(obj, trusted=obj.trusted, muted=obj.muted, actor=actor_of(request))
