"""Django admin for intake data: read-only where the data is evidence."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from reports.actions import do_process_inbound, do_reset_inbound
from reports.models import (
    Attachment,
    Case,
    Entity,
    InboundMessage,
    InboundWebhook,
    Report,
    ReportEntity,
)
from reports.rawstore import read_stored


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence is never edited or deleted through admin; state changes go through actions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "received_at",
        "source",
        "state",
        "message_id",
        "raw_size",
        "attempts",
        "message_id_collision",
    ]
    list_filter = ["state", "source", "message_id_collision", "converted_from"]
    search_fields = ["message_id", "sha256", "envelope_sender", "provider_event_id"]
    date_hierarchy = "received_at"
    readonly_fields = ["download"]
    actions = ["reprocess"]

    def get_urls(self) -> list:
        return [
            path("<int:pk>/raw.eml", self.admin_site.admin_view(self.raw_view), name="reports_inboundmessage_raw"),
            *super().get_urls(),
        ]

    def raw_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponseForbidden()
        message = get_object_or_404(InboundMessage, pk=pk)
        # Served as a download, never rendered: the bytes are attacker-controlled (SECURITY rule 1).
        response = HttpResponse(read_stored(message.raw), content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="inbound-{message.pk}.eml"'
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @admin.display(description="raw message")
    def download(self, obj: InboundMessage) -> str:
        url = reverse("admin:reports_inboundmessage_raw", args=[obj.pk])
        return format_html('<a href="{}">download .eml ({} bytes)</a>', url, obj.raw_size)

    @admin.action(description="Reprocess the selected failed messages")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[InboundMessage]) -> None:
        done = failed = 0
        for message in queryset.filter(state=InboundMessage.State.FAILED):
            do_reset_inbound(message.pk)
            state = do_process_inbound(message.pk).state
            failed += state == InboundMessage.State.FAILED
            done += 1
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"Reprocessed {done} message(s); {failed} still failed.", level)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The changelist needs "change" for admin actions to show; the form stays read-only.
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)


@admin.register(InboundWebhook)
class InboundWebhookAdmin(ReadOnlyAdmin):
    """Provider requests as received; a failed one shows anymail's error and is retried by the sweep."""

    list_display = ["id", "received_at", "source", "state", "size", "attempts", "processed_at"]
    list_filter = ["state", "source"]
    search_fields = ["sha256", "error"]
    date_hierarchy = "received_at"
    # The body is the provider's payload: never rendered here (SECURITY rule 1), its size shown.
    exclude = ["body"]


class ReportEntityInline(admin.TabularInline):
    model = ReportEntity
    extra = 0
    can_delete = False
    readonly_fields = ["entity", "seen_as", "source", "defanged", "lookalike"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    can_delete = False
    readonly_fields = ["filename", "content_type", "declared_type", "size", "sha256"]
    exclude = ["file"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "kind", "reporter", "case", "language", "subject"]
    list_filter = ["kind", "language"]
    search_fields = ["subject", "message_id", "reporter__email", "case__reference"]
    list_select_related = ["reporter", "case"]
    inlines = [ReportEntityInline, AttachmentInline]
    exclude = ["entities"]


_REPORT_ROW = ("received_at", "kind", "reporter", "subject", "language")


class ReportInline(admin.TabularInline):
    model = Report
    fields = _REPORT_ROW
    readonly_fields = _REPORT_ROW
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ["reference", "status", "priority", "category", "assignee", "report_count", "last_report_at"]
    list_filter = ["status", "priority", "category"]
    search_fields = ["reference", "entities__url"]
    list_select_related = ["assignee"]
    filter_horizontal = ["entities"]
    inlines = [ReportInline]


@admin.register(Entity)
class EntityAdmin(ReadOnlyAdmin):
    list_display = ["url", "kind", "status", "report_count", "lookalike", "first_seen", "last_seen"]
    list_filter = ["kind", "status", "lookalike"]
    search_fields = ["url"]


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ["filename", "content_type", "declared_type", "size", "report"]
    search_fields = ["filename", "sha256"]
    exclude = ["file"]
