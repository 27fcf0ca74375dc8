"""The REST API over intake's data: cases, reports, entity look-up, and filing a report.

Also the ground floor the whole /api/v1/ shares (moderation/integrations/api.py builds on it):
the error shape, cursor pages and schema naming. Authentication, scopes and throttling come from
settings (moderation/integrations/apikeys.py); a view here only names its scope in
`required_scope`, so reports never imports moderation.

Personal data: a reporter's address and name are shown only to staff signed in with a session
(the browsable API), never to API keys, which serve the platform's systems.
"""

from __future__ import annotations

import hashlib
import json
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from reports.actions import do_process_inbound, do_store_inbound
from reports.entities import canonicalize, extract_entities
from reports.models import Case, Entity, InboundMessage, Report, ReportEntity, Reporter
from reports.queries import LISTED_ENTITY_FIELDS, QueueFilters, case_list, entity_url, normalise_reference
from reports.rawstore import read_stored

# ---------------------------------------------------------------------------------------------
# Shared by every /api/v1/ view.


# Defined before any view: extend_schema below loads DEFAULT_SCHEMA_CLASS, which is this class.
class ApiAutoSchema(AutoSchema):
    """Components named after the view that owns the nested serializer: CaseDetailApiOutput."""

    def get_serializer_name(self, serializer: serializers.BaseSerializer, direction: str) -> str:
        return type(serializer).__qualname__.replace(".", "")


class ApiErrorSerializer(serializers.Serializer):
    class ErrorSerializer(serializers.Serializer):
        code = serializers.CharField(help_text="Stable, machine-readable: invalid, not_found, missing_scope...")
        message = serializers.CharField(help_text="For people; may change.")
        fields = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text='Problems per input field, by dotted path ("reporter.email", "urls.0").',
        )

    error = ErrorSerializer()


_ERROR_TEXT = {
    400: "The request is not valid (see error.fields).",
    401: "No API key, or a malformed, unknown or revoked one.",
    403: "The key lacks this operation's scope (signed in: your role does not allow it).",
    404: "No such object.",
    422: "The Idempotency-Key was used before with a different request.",
    429: "Too many requests for this key; see Retry-After.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error statuses an operation can answer, besides 401, 403 and 429."""
    return {
        code: OpenApiResponse(ApiErrorSerializer, description=_ERROR_TEXT[code]) for code in (*codes, 401, 403, 429)
    }


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _flatten(detail: Any, path: str, into: dict[str, list[str]]) -> None:
    if isinstance(detail, dict):
        for key, value in detail.items():
            _flatten(value, f"{path}.{key}" if path else str(key), into)
    elif isinstance(detail, list) and all(isinstance(item, str) for item in detail):
        into.setdefault(path or "non_field_errors", []).extend(str(item) for item in detail)
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            _flatten(item, f"{path}.{index}" if path else str(index), into)
    else:
        into.setdefault(path or "non_field_errors", []).append(str(detail))


def _describe(exc: exceptions.APIException) -> tuple[str, str, dict[str, list[str]]]:
    detail = exc.detail
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        _flatten(detail, "", fields)
        general = fields.pop("non_field_errors", [])
        message = " ".join(general) or "The request is not valid; see the fields."
        return "invalid", message, fields
    if isinstance(detail, list):
        first = detail[0] if detail else None
        code = getattr(first, "code", None) or exc.default_code
        return str(code), " ".join(str(item) for item in detail) or str(exc.default_detail), {}
    return str(getattr(detail, "code", None) or exc.default_code), str(detail), {}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every 4xx as {"error": {"code", "message", "fields"}}; bad input never becomes a 500."""
    if isinstance(exc, DjangoValidationError):
        # An action refused the input (e.g. blocking a private chat), or a query a filter (per field).
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail, code=getattr(exc, "code", None) or "invalid")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError("The request was refused as malformed.")
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = error_body(*_describe(exc))
    return response


@csrf_exempt  # it changes nothing; a POST to a wrong path deserves the 404, not a CSRF page
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Paths under /api/v1/ that name no endpoint answer in the API's error shape, not in HTML."""
    message = "No such endpoint." if path.endswith("/") or not path else 'No such endpoint; API paths end with "/".'
    return JsonResponse(error_body("not_found", message), status=404)


class ApiCursorPagination(CursorPagination):
    """Opaque cursors over an immutable ordering (the view sets `ordering`); a bad cursor is a 400."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-id"

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Any:
        invalid = exceptions.ValidationError([self.invalid_cursor_message], code="invalid_cursor")
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise invalid from None
        if cursor is not None and cursor.position is not None:
            # The position goes into a filter: check it is a value of the ordering field first.
            # DRF has turned `ordering` into a tuple by now.
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
            try:
                field.to_python(cursor.position)
            except (DjangoValidationError, TypeError, ValueError):
                raise invalid from None
        return cursor


def is_staff_session(request: Request) -> bool:
    """Signed in to the browsable API (the permission check already required a workspace role)."""
    return request.auth is None and request.user.is_authenticated


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def no_control_characters(value: str) -> None:
    if _CONTROL.search(value):
        raise serializers.ValidationError("Control characters and line breaks are not allowed here.")


class ListFromContext(serializers.ListSerializer):
    """A list the view computed and passed in the serializer's context under this field's name,
    such as the newest N of a relation by one indexed LIMIT query (a sliced prefetch would number
    every row of a storm case), instead of an attribute stuck onto the model instance."""

    def get_attribute(self, instance: object) -> object:
        return self.context[self.field_name]


class EntitySummarySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    url = serializers.CharField()
    kind = serializers.ChoiceField(choices=Entity.Kind.choices)
    status = serializers.ChoiceField(choices=Entity.Status.choices)


class CaseSummarySerializer(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.ChoiceField(choices=Case.Status.choices)


# ---------------------------------------------------------------------------------------------
# Entities


MAX_CASES_SHOWN = 100
MAX_REPORTS_SHOWN = 200


class EntityLookupApi(APIView):
    required_scope = "read"

    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(
            max_length=2048, help_text="Any spelling: t.me/Name, @name, tg://resolve?domain=name..."
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField(source="public_id")
        url = serializers.CharField(help_text="The canonical URL.")
        kind = serializers.ChoiceField(choices=Entity.Kind.choices)
        status = serializers.ChoiceField(choices=Entity.Status.choices)
        lookalike = serializers.BooleanField()
        report_count = serializers.IntegerField()
        first_seen = serializers.DateTimeField()
        last_seen = serializers.DateTimeField()
        cases = ListFromContext(
            child=CaseSummarySerializer(), help_text=f"The newest {MAX_CASES_SHOWN} cases naming it."
        )

    @extend_schema(
        operation_id="entities_lookup",
        summary="Look an entity up by any spelling of its URL",
        description="Scope: `read`. The URL is canonicalised exactly as intake does (aliases, defanged "
        "and look-alike spellings). 400 when it is no platform link, 404 when no report named it.",
        parameters=[InputSerializer],
        responses={200: OutputSerializer, **error_responses(400, 404)},
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        url = entity_url(params.validated_data["url"], field="url")
        entity = Entity.objects.filter(url=url).first()
        if entity is None:
            raise exceptions.NotFound(f"No report has named {url}.")
        newest = entity.cases.order_by("-created_at", "-id").only("reference", "status")[:MAX_CASES_SHOWN]
        return Response(self.OutputSerializer(entity, context={"cases": newest}).data)


# ---------------------------------------------------------------------------------------------
# Cases


class CaseListApi(APIView):
    required_scope = "read"
    pagination_class = ApiCursorPagination

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=[("open", "any open status"), *Case.Status.choices],
            required=False,
            help_text="A status, or `open` for new, open and waiting.",
        )
        category = serializers.CharField(max_length=32, required=False, help_text="A policy category, e.g. terrorism.")
        entity = serializers.CharField(
            max_length=2048, required=False, help_text="Cases naming this entity (any spelling)."
        )

    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        status = serializers.ChoiceField(choices=Case.Status.choices)
        priority = serializers.ChoiceField(choices=Case.Priority.choices)
        category = serializers.CharField(help_text="Empty until a moderator sets one.")
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()
        last_report_at = serializers.DateTimeField()
        report_count = serializers.IntegerField()
        merged_into = serializers.CharField(source="merged_into.reference", allow_null=True, default=None)
        entities = EntitySummarySerializer(many=True)

    @extend_schema(
        operation_id="cases_list",
        summary="List cases, newest first",
        description="Scope: `read`. Filters combine; pages follow `next` (an opaque cursor).",
        parameters=[InputSerializer],
        responses={200: OutputSerializer(many=True), **error_responses(400)},
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        # The queue's filters, so that "open" or an entity means the same here as on the queue page.
        cases = case_list(
            QueueFilters(
                status=data.get("status", "all"), category=data.get("category", ""), entity=data.get("entity", "")
            )
        )
        paginator = self.pagination_class()
        paginator.ordering = "-created_at"
        page = paginator.paginate_queryset(cases, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class CaseDetailApi(APIView):
    required_scope = "read"

    class OutputSerializer(serializers.Serializer):
        class ReportSummarySerializer(serializers.Serializer):
            id = serializers.UUIDField(source="public_id")
            kind = serializers.ChoiceField(choices=Report.Kind.choices)
            received_at = serializers.DateTimeField()
            language = serializers.CharField()
            subject = serializers.CharField()

        reference = serializers.CharField()
        status = serializers.ChoiceField(choices=Case.Status.choices)
        priority = serializers.ChoiceField(choices=Case.Priority.choices)
        category = serializers.CharField()
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()
        last_report_at = serializers.DateTimeField()
        report_count = serializers.IntegerField()
        merged_into = serializers.CharField(source="merged_into.reference", allow_null=True, default=None)
        entities = EntitySummarySerializer(many=True)
        reports = ListFromContext(
            child=ReportSummarySerializer(), help_text=f"The newest {MAX_REPORTS_SHOWN} reports; see report_count."
        )

    @extend_schema(
        operation_id="cases_retrieve",
        summary="One case with its entities and newest reports",
        description="Scope: `read`.",
        responses={200: OutputSerializer, **error_responses(404)},
    )
    def get(self, request: Request, reference: str) -> Response:
        case = (
            Case.objects.select_related("merged_into")
            .prefetch_related(Prefetch("entities", queryset=Entity.objects.only(*LISTED_ENTITY_FIELDS).order_by("url")))
            .filter(reference=normalise_reference(reference))
            .first()
        )
        if case is None:
            raise exceptions.NotFound(f"No case {reference}.")
        newest = (
            Report.objects.filter(case=case)
            .order_by("-received_at", "-id")
            .only("public_id", "kind", "received_at", "language", "subject")[:MAX_REPORTS_SHOWN]
        )
        return Response(self.OutputSerializer(case, context={"reports": newest}).data)


# ---------------------------------------------------------------------------------------------
# Reports


class ReportDetailApi(APIView):
    required_scope = "read"

    class OutputSerializer(serializers.Serializer):
        class ReporterSerializer(serializers.Serializer):
            email = serializers.CharField()
            name = serializers.CharField(source="display_name")
            trusted = serializers.BooleanField()

            def get_attribute(self, instance: Report) -> Reporter | None:
                # Personal data: only where the view says so (staff sessions), never by default.
                return instance.reporter if self.context.get("show_reporter") else None

        class NamedEntitySerializer(serializers.Serializer):
            id = serializers.UUIDField(source="entity.public_id")
            url = serializers.CharField(source="entity.url")
            kind = serializers.ChoiceField(source="entity.kind", choices=Entity.Kind.choices)
            status = serializers.ChoiceField(source="entity.status", choices=Entity.Status.choices)
            seen_as = serializers.CharField(help_text="How the report spelled it.")
            defanged = serializers.BooleanField()
            lookalike = serializers.BooleanField()

        class AttachmentSerializer(serializers.Serializer):
            id = serializers.UUIDField(source="public_id")
            filename = serializers.CharField()
            content_type = serializers.CharField(help_text="Sniffed from the bytes, not as declared.")
            size = serializers.IntegerField()
            sha256 = serializers.CharField()

        id = serializers.UUIDField(source="public_id")
        case = serializers.CharField(source="case.reference", allow_null=True, default=None)
        kind = serializers.ChoiceField(choices=Report.Kind.choices)
        subject = serializers.CharField()
        text = serializers.CharField(help_text="Plain text as intake extracted it; never HTML.")
        language = serializers.CharField()
        received_at = serializers.DateTimeField()
        sent_at = serializers.DateTimeField(allow_null=True)
        from_verified = serializers.BooleanField(
            help_text="A receiver the desk trusts (ABUSEDESK_AUTHSERV_IDS) reported DMARC pass for the From address."
        )
        reporter = ReporterSerializer(
            allow_null=True,
            help_text="Only for staff signed in with a session; always null for API keys.",
        )
        entities = NamedEntitySerializer(source="reportentity_set", many=True)
        attachments = AttachmentSerializer(many=True)

    @extend_schema(
        operation_id="reports_retrieve",
        summary="One report: its text, entities and attachment metadata",
        description="Scope: `read`. Raw mail is never served here. The reporter's address is personal "
        "data and is shown only to staff signed in to the browsable API, never to API keys.",
        responses={200: OutputSerializer, **error_responses(404)},
    )
    def get(self, request: Request, public_id: str) -> Response:
        report = (
            Report.objects.select_related("case", "reporter")
            .prefetch_related(
                Prefetch("reportentity_set", queryset=ReportEntity.objects.select_related("entity").order_by("id")),
                "attachments",
            )
            .filter(public_id=public_id)
            .first()
        )
        if report is None:
            raise exceptions.NotFound("No such report.")
        context = {"show_reporter": is_staff_session(request)}
        return Response(self.OutputSerializer(report, context=context).data)


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used before for a different request."
    default_code = "idempotency_key_reused"


_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})?")
_LOCAL_PART = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
REQUEST_DIGEST_HEADER = "X-Abusedesk-Request-Digest"


class ReportCreateApi(APIView):
    required_scope = "report"

    class InputSerializer(serializers.Serializer):
        class ReporterSerializer(serializers.Serializer):
            email = serializers.EmailField(
                max_length=320, help_text="The person reporting, as the platform verified them."
            )
            name = serializers.CharField(
                max_length=200, required=False, allow_blank=True, default="", validators=[no_control_characters]
            )
            language = serializers.RegexField(
                _LANGUAGE_TAG,
                max_length=8,
                required=False,
                allow_blank=True,
                default="",
                help_text="Preferred language for replies, e.g. de or pt-BR.",
            )

            def validate_email(self, value: str) -> str:
                local, _, domain = value.rpartition("@")
                try:
                    ascii_domain = domain.encode("idna").decode("ascii").lower()
                except UnicodeError:
                    raise serializers.ValidationError("The domain is not a valid host name.") from None
                if not _LOCAL_PART.fullmatch(local):
                    raise serializers.ValidationError("Only plain ASCII addresses (no quotes or spaces) are accepted.")
                return f"{local}@{ascii_domain}"

        reporter = ReporterSerializer()
        subject = serializers.CharField(
            max_length=500, required=False, allow_blank=True, default="", validators=[no_control_characters]
        )
        text = serializers.CharField(max_length=100_000, help_text="What the reporter wrote.")
        urls = serializers.ListField(
            child=serializers.CharField(max_length=2048),
            max_length=100,
            required=False,
            default=list,
            help_text="Links to the reported channels, groups, bots, invites or sets, in any spelling.",
        )

        def validate_urls(self, value: list[str]) -> list[str]:
            errors = {
                index: ["Not a link to a public channel, group, bot, invite or set."]
                for index, url in enumerate(value)
                if canonicalize(url) is None
            }
            if errors:
                raise serializers.ValidationError(errors)
            return value

    class OutputSerializer(serializers.Serializer):
        case = serializers.CharField(
            allow_null=True, help_text="Null only when intake took the mail for automatic mail."
        )
        report = serializers.UUIDField(allow_null=True)
        state = serializers.ChoiceField(
            choices=InboundMessage.State.choices, help_text="`processed` unless intake failed."
        )
        entities = EntitySummarySerializer(many=True)

    @extend_schema(
        operation_id="reports_create",
        summary="File a report from a trusted system",
        description="Scope: `report`. The report becomes a real e-mail from the reporter and goes through "
        "intake's threading, so it joins an open case about the same entity like any mail would. "
        "An `Idempotency-Key` header makes retries safe: a repeat returns the first result "
        "(header `Idempotent-Replayed: true`); reusing a key for a different request is a 422. "
        "201 when processed; 202 when the mail was stored but processing failed (staff can reprocess it).",
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="Up to 255 printable ASCII characters, unique per request, per API key.",
            )
        ],
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            202: OpenApiResponse(OutputSerializer, description="Stored; processing failed."),
            **error_responses(400, 422),
        },
    )
    def post(self, request: Request) -> Response:
        idempotency_key = request.headers.get("Idempotency-Key", "")
        if idempotency_key and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise exceptions.ValidationError(
                ["Idempotency-Key must be 1-255 printable ASCII characters."], code="invalid_idempotency_key"
            )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        key_name = getattr(request.auth, "name", None)
        source = f"api:{key_name}" if key_name else f"api:user:{request.user.get_username()}"
        stored = do_store_inbound(
            _as_mail(data, digest), source=source, provider_event_id=idempotency_key, enqueue=False
        )
        if not stored.created and _request_digest(stored.message) != digest:
            raise IdempotencyKeyReused()
        message = do_process_inbound(stored.message.pk)
        report = Report.objects.select_related("case").filter(inbound=message).first()
        body = self.OutputSerializer(
            {
                "case": report.case.reference if report and report.case else None,
                "report": report.public_id if report else None,
                "state": message.state,
                "entities": report.entities.only(*LISTED_ENTITY_FIELDS).order_by("url") if report else [],
            }
        ).data
        response = Response(body, status=status.HTTP_201_CREATED if report else status.HTTP_202_ACCEPTED)
        if not stored.created:
            response["Idempotent-Replayed"] = "true"
        return response


def _as_mail(data: dict[str, Any], digest: str) -> bytes:
    """The report as the RFC 5322 message intake would have received from the reporter."""
    reporter = data["reporter"]
    local, _, domain = reporter["email"].rpartition("@")
    mail = EmailMessage()
    mail["From"] = Address(display_name=reporter["name"], username=local, domain=domain)
    mail["To"] = settings.ABUSEDESK_ADDRESS
    mail["Subject"] = data["subject"]
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid("api", domain=settings.ABUSEDESK_ADDRESS.rpartition("@")[2] or "abusedesk.invalid")
    mail[REQUEST_DIGEST_HEADER] = digest
    mail.set_content(_body_text(data["text"], data["urls"]))
    if reporter["language"]:
        # After set_content, which replaces every Content-* header.
        mail["Content-Language"] = reporter["language"]
    return mail.as_bytes(policy=default_policy)


def _body_text(text: str, urls: list[str]) -> str:
    lines = []
    for url in urls:
        mention = canonicalize(url)
        assert mention is not None  # validated
        # Keep the reporter's spelling (defanged, look-alike) when intake reads it as the same entity.
        spelled = url.strip() if mention.url in {m.url for m in extract_entities(url.strip())} else mention.url
        lines.append(spelled)
    return text if not lines else f"{text}\n\nReported links:\n" + "\n".join(lines) + "\n"


def _request_digest(message: InboundMessage) -> str:
    headers = BytesHeaderParser(policy=default_policy).parsebytes(read_stored(message.raw))
    return str(headers.get(REQUEST_DIGEST_HEADER, "")).strip()
