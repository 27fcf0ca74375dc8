"""Hash banks in Django admin, for leads: banks (saved through an audited action), an upload page
for hash lists, and the banked hashes and matches as read-only evidence."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from moderation.known_content.actions import do_import_hashes, do_save_hash_bank
from moderation.known_content.forms import HashListUploadForm
from moderation.known_content.lists import ListFormatError, read_hash_list
from moderation.models import BankedHash, HashBank, KnownContentMatch
from moderation.staff import roles
from moderation.views import actor_of
from reports.admin import ReadOnlyAdmin


class LeadsOnly:
    """Hash banks are a lead's responsibility (and a superuser's, who holds every role)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return roles.is_lead(request.user)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return roles.is_lead(request.user)


@admin.register(HashBank)
class HashBankAdmin(LeadsOnly, admin.ModelAdmin):
    list_display = ["name", "active", "size", "revision", "updated_at"]
    list_filter = ["active"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "active"]
    change_list_template = "admin/moderation/hashbank/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[HashBank]:
        return super().get_queryset(request).annotate(hash_count=Count("hashes"))

    @admin.display(description=_("hashes"), ordering="hash_count")
    def size(self, obj: HashBank) -> int:
        return getattr(obj, "hash_count", 0)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return roles.is_lead(request.user)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return roles.is_lead(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Matches point at banked hashes; retire a bank by unticking "active".
        return False

    def save_model(self, request: HttpRequest, obj: HashBank, form: Any, change: bool) -> None:
        do_save_hash_bank(obj, actor=actor_of(request))

    def get_urls(self) -> list[Any]:
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="moderation_hashbank_import"),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        form = HashListUploadForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                listed = read_hash_list(
                    upload.read(),
                    filename=upload.name,
                    label=form.cleaned_data["label"],
                    source=form.cleaned_data["source"],
                )
                result = do_import_hashes(
                    form.cleaned_data["bank"], listed, filename=upload.name, actor=actor_of(request)
                )
            except (ListFormatError, ValidationError) as exc:
                form.add_error("file" if isinstance(exc, ListFormatError) else "bank", str(exc.args[0]))
            else:
                level = messages.WARNING if result.rejected else messages.SUCCESS
                self.message_user(
                    request,
                    _("%(bank)s: %(added)d hash(es) added, %(already)d already there, %(rejected)d row(s) rejected.")
                    % {
                        "bank": result.bank.name,
                        "added": result.added,
                        "already": result.already,
                        "rejected": result.rejected,
                    },
                    level,
                )
                if not result.rejected:
                    return HttpResponseRedirect(reverse("admin:moderation_hashbank_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import a hash list"),
            "opts": self.opts,
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/moderation/hashbank/import.html", context)


@admin.register(BankedHash)
class BankedHashAdmin(LeadsOnly, ReadOnlyAdmin):
    list_display = ["value", "kind", "bank", "label", "source", "listed_on", "quality", "added_at"]
    list_filter = ["kind", "bank"]
    search_fields = ["value", "label", "source"]
    list_select_related = ["bank"]
    exclude = ["attachment"]


@admin.register(KnownContentMatch)
class KnownContentMatchAdmin(LeadsOnly, ReadOnlyAdmin):
    list_display = ["matched_at", "bank_name", "label", "kind", "distance", "case", "attachment"]
    list_filter = ["bank_name", "kind"]
    search_fields = ["label", "attachment__report__case__reference"]
    list_select_related = ["attachment__report__case"]
    exclude = ["attachment", "banked_hash"]

    @admin.display(description=_("case"))
    def case(self, obj: KnownContentMatch) -> str:
        return str(obj.attachment.report.case or "—")
