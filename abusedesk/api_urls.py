"""/api/v1/: the REST API (reports/api.py, moderation/integrations/api.py), its OpenAPI schema and docs page."""

from __future__ import annotations

from django.urls import path, re_path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView

from moderation.integrations import api as moderation_api
from reports import api as reports_api

app_name = "api"

urlpatterns = [
    path("blocklist/", moderation_api.BlocklistApi.as_view(), name="blocklist"),
    path("entities/", reports_api.EntityLookupApi.as_view(), name="entity-lookup"),
    path("entities/<uuid:public_id>/block/", moderation_api.EntityBlockApi.as_view(), name="entity-block"),
    path("entities/<uuid:public_id>/unblock/", moderation_api.EntityUnblockApi.as_view(), name="entity-unblock"),
    path("cases/", reports_api.CaseListApi.as_view(), name="case-list"),
    path("cases/<str:reference>/", reports_api.CaseDetailApi.as_view(), name="case-detail"),
    path("reports/", reports_api.ReportCreateApi.as_view(), name="report-create"),
    path("reports/<uuid:public_id>/", reports_api.ReportDetailApi.as_view(), name="report-detail"),
    path("audit/", moderation_api.AuditListApi.as_view(), name="audit-list"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", TemplateView.as_view(template_name="api/docs.html"), name="docs"),
    # Last: any other path under /api/v1/ is a JSON 404, not the HTML error page.
    re_path(r"^(?P<path>.*)$", reports_api.api_not_found),
]
