"""Integrations in Django admin: API keys (listed and revoked), enforcement webhook endpoints (secret
shown once), their deliveries and attempts.

Revoking a key, saving an endpoint and redelivering go through the integrations' actions, so each is
validated and audited; deliveries and their attempts are read-only evidence. Keys are created with
`manage.py create_api_key`, which prints the secret once, so admin never holds a plaintext key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from moderation.integrations.apikeys import do_revoke_api_key
from moderation.integrations.enforcement import (
    EVENTS,
    check_webhook_endpoint,
    do_redeliver_webhook,
    do_save_webhook_endpoint,
    mask_secret,
)
from moderation.models import ApiKey, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from moderation.views import actor_of
from reports.admin import ReadOnlyAdmin


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["name", "prefix", "scope_list", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    list_select_related = ["created_by"]
    # Not secret_hash: nothing in admin needs it.
    fields = ["name", "prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The changelist needs "change" for the revoke action; each key stays read-only.
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)

    @admin.action(description=_("Revoke the selected API keys"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> TemplateResponse | None:
        """Ask first (a revoked key cannot be restored, and an integration that still uses it stops
        at once), then revoke each selected key through do_revoke_api_key."""
        selected = list(queryset.select_related("created_by").order_by("name"))
        if request.POST.get("post") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Revoke API keys?"),
                "opts": self.opts,
                "keys": selected,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/moderation/apikey/revoke_confirmation.html", context)
        done = sum(do_revoke_api_key(key, actor=actor_of(request)) for key in selected)
        self.message_user(
            request,
            _("%(done)d of %(selected)d API key(s) revoked; the others were revoked already.")
            % {"done": done, "selected": len(selected)},
            messages.SUCCESS,
        )
        return None


# Set on the request by save_model, read by response_add/response_change of the same request.
_NEW_SECRET = "_abusedesk_new_webhook_secret"


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=WebhookEndpoint.Event.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The events this endpoint receives."),
    )
    rotate_secret = forms.BooleanField(
        required=False,
        label=_("Rotate the signing secret"),
        help_text=_("A new secret is generated and shown once; the old one stops working at once."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "events", "active"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if "url" in cleaned and "events" in cleaned:
            try:
                check_webhook_endpoint(WebhookEndpoint(url=cleaned["url"], events=cleaned["events"]))
            except ValidationError as exc:
                raise ValidationError(exc.message_dict) from None
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["name", "url", "event_list", "active", "pending", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "url"]
    readonly_fields = ["signing_secret", "deliveries", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        return (
            super()
            .get_queryset(request)
            .annotate(pending_count=Count("deliveries", filter=Q(deliveries__state=WebhookDelivery.State.PENDING)))
        )

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("name", "url", "events", "active")
        return ("name", "url", "events", "active", "signing_secret", "rotate_secret", "deliveries", "created_at")

    @admin.display(description=_("events"))
    def event_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events)

    @admin.display(description=_("pending"), ordering="pending_count")
    def pending(self, obj: WebhookEndpoint) -> int:
        return getattr(obj, "pending_count", 0)

    @admin.display(description=_("signing secret"))
    def signing_secret(self, obj: WebhookEndpoint) -> str:
        return _("%(start)s (shown in full only when generated)") % {"start": mask_secret(obj.secret)}

    @admin.display(description=_("deliveries"))
    def deliveries(self, obj: WebhookEndpoint) -> SafeString:
        url = reverse("admin:moderation_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("deliveries and attempts"))

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: forms.ModelForm, change: bool) -> None:
        secret = do_save_webhook_endpoint(
            obj, actor=actor_of(request), rotate_secret=bool(form.cleaned_data.get("rotate_secret"))
        )
        setattr(request, _NEW_SECRET, secret)

    def _secret_page(self, request: HttpRequest, obj: WebhookEndpoint) -> HttpResponse | None:
        secret = getattr(request, _NEW_SECRET, None)
        if not secret:
            return None
        # Rendered into this one response (admin's views are never cached), never kept in a
        # message or the session.
        context = {
            **self.admin_site.each_context(request),
            "title": _("Signing secret of %(name)s") % {"name": obj.name},
            "endpoint": obj,
            "secret": secret,
            "opts": self.opts,
            "continue_url": reverse("admin:moderation_webhookendpoint_change", args=[obj.pk]),
        }
        return TemplateResponse(request, "admin/moderation/webhookendpoint/secret.html", context)

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        return self._secret_page(request, obj) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: WebhookEndpoint) -> HttpResponse:
        return self._secret_page(request, obj) or super().response_change(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Deliveries and their attempts are kept; retire an endpoint by unticking "active".
        return False


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("attempted_at", "status_code", "latency_ms", "response_excerpt", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["endpoint", "sequence", "event", "entity", "state", "attempts", "next_attempt", "delivered_at"]
    list_filter = ["state", "endpoint"]
    search_fields = ["change__entity__url"]
    list_select_related = ["endpoint", "change__entity"]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver_now"]

    @admin.display(description=_("sequence"), ordering="change_id")
    def sequence(self, obj: WebhookDelivery) -> int:
        return obj.change_id

    @admin.display(description=_("event"))
    def event(self, obj: WebhookDelivery) -> str:
        return EVENTS[obj.change.kind]

    @admin.display(description=_("entity"))
    def entity(self, obj: WebhookDelivery) -> str:
        return obj.change.entity.url

    @admin.display(description=_("next attempt"), ordering="next_attempt_at")
    def next_attempt(self, obj: WebhookDelivery) -> datetime | str:
        return obj.next_attempt_at if obj.state == WebhookDelivery.State.PENDING else "—"

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The changelist needs "change" for the redeliver action; each delivery stays read-only.
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)

    @admin.action(description=_("Redeliver now"), permissions=["change"])
    def redeliver_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        selected = list(queryset.order_by("change_id"))
        done = sum(do_redeliver_webhook(delivery, actor=actor_of(request)) for delivery in selected)
        self.message_user(
            request,
            _(
                "%(done)d of %(selected)d delivery(ies) queued again, in sequence order; pending ones keep "
                "their schedule."
            )
            % {"done": done, "selected": len(selected)},
            messages.SUCCESS,
        )
