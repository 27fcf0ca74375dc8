from __future__ import annotations

from django.urls import path

from moderation.transparency import dashboard
from moderation.views import audit, auth, case, entity, known_content, queue

app_name = "moderation"

urlpatterns = [
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("", queue.queue, name="queue"),
    path("queue/new/", queue.queue_new, name="queue-new"),
    path("queue/bulk/", queue.queue_bulk, name="queue-bulk"),
    path("cases/<str:reference>/", case.case_detail, name="case-detail"),
    path("cases/<str:reference>/assign/", case.case_assign, name="case-assign"),
    path("cases/<str:reference>/status/", case.case_status, name="case-status"),
    path("cases/<str:reference>/priority/", case.case_priority, name="case-priority"),
    path("cases/<str:reference>/category/", case.case_category, name="case-category"),
    path("cases/<str:reference>/decline/", case.case_decline, name="case-decline"),
    path("cases/<str:reference>/notes/", case.case_note, name="case-note"),
    path("cases/<str:reference>/merge/", case.case_merge, name="case-merge"),
    path("cases/<str:reference>/reply/", case.reply_send, name="case-reply"),
    path("cases/<str:reference>/reply/preview/", case.reply_preview, name="case-reply-preview"),
    path("cases/<str:reference>/entities/<uuid:entity_id>/block/", case.entity_block, name="entity-block"),
    path("cases/<str:reference>/entities/<uuid:entity_id>/unblock/", case.entity_unblock, name="entity-unblock"),
    path("cases/<str:reference>/entities/<uuid:entity_id>/split/", case.entity_split, name="entity-split"),
    path("cases/<str:reference>/reports/<uuid:report_id>/move/", case.report_move, name="report-move"),
    path("cases/<str:reference>/reports/<uuid:report_id>/raw/", case.report_raw, name="report-raw"),
    path("cases/<str:reference>/known-content/add/", known_content.known_content_add, name="known-content-add"),
    path("attachments/<uuid:attachment_id>/", case.attachment_download, name="attachment-download"),
    path("attachments/<uuid:attachment_id>/thumbnail/", case.attachment_thumbnail, name="attachment-thumbnail"),
    path("entities/<uuid:entity_id>/", entity.entity_detail, name="entity-detail"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.csv", audit.audit_export, name="audit-export"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
]
