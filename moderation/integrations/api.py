"""The REST API over moderation: the blocklist for enforcement systems, block/unblock, the audit log.

Writes call the same actions as the workspace (moderation.actions), with the API key as the audit
log's actor ("api:<key name>", no user).

Block and unblock are idempotent: repeating one that is already in force answers 200 with
`"changed": false` and the decision in force, and records nothing, so a client may retry safely.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpResponseNotModified, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from moderation.actions import do_block_entity, do_unblock_entity
from moderation.audit.queries import AuditFilters, audit_entries
from moderation.integrations.apikeys import api_actor, api_key_of
from moderation.models import AuditAction, BlocklistChange, Decision, PolicyCategory
from reports.api import ApiCursorPagination, EntitySummarySerializer, error_responses
from reports.models import Case, Entity
from reports.queries import normalise_reference

# ---------------------------------------------------------------------------------------------
# Blocklist

_CURSOR = re.compile(r"v1:(0|[1-9][0-9]{0,18})")
EXPORT_CHUNK = 2000


def encode_cursor(change_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{change_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    match = _CURSOR.fullmatch(text)
    if match is None:
        raise exceptions.ValidationError(["Invalid cursor: use one this API returned."], code="invalid_cursor")
    return int(match.group(1))


def latest_change_id() -> int:
    return BlocklistChange.objects.order_by("-id").values_list("id", flat=True).first() or 0


def blocked_as_of(change_id: int) -> QuerySet[BlocklistChange]:
    """The blocklist exactly as it stood after change `change_id`: each entity whose latest change up
    to there is a block. Read from the append-only log, so it matches the cursor with no snapshot."""
    later = BlocklistChange.objects.filter(entity_id=OuterRef("entity_id"), id__gt=OuterRef("id"), id__lte=change_id)
    return (
        BlocklistChange.objects.filter(id__lte=change_id, kind=BlocklistChange.Kind.BLOCK)
        .filter(~Exists(later))
        .order_by("id")
    )


def _export_lines(upto: int) -> Iterator[bytes]:
    """The export as one JSON document, written a chunk of rows at a time (constant memory)."""
    rows = (
        blocked_as_of(upto)
        .values_list("entity__public_id", "entity__kind", "entity__url", "category", "created_at")
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    # DRF's encoder, so timestamps read exactly as in the other answers (microseconds, "Z").
    encode = JSONEncoder(separators=(",", ":")).encode
    yield f'{{"cursor":{json.dumps(encode_cursor(upto))},"entities":['.encode()
    batch: list[str] = []
    count = 0
    for public_id, kind, url, category, blocked_at in rows:
        prefix = "\n" if count == 0 else ",\n"
        batch.append(
            prefix + encode({"id": public_id, "kind": kind, "url": url, "category": category, "blocked_at": blocked_at})
        )
        count += 1
        if len(batch) >= EXPORT_CHUNK:
            yield "".join(batch).encode()
            batch = []
    batch.append(f'\n],"count":{count}}}\n')
    yield "".join(batch).encode()


class BlocklistApi(APIView):
    required_scope = "blocklist"

    class InputSerializer(serializers.Serializer):
        since = serializers.CharField(
            max_length=64,
            required=False,
            help_text="A cursor from an earlier answer: return the changes after it instead of the full list.",
        )
        limit = serializers.IntegerField(
            min_value=1, max_value=1000, default=500, help_text="Most changes per answer (with `since` only)."
        )

    class ExportSerializer(serializers.Serializer):
        class BlockedSerializer(serializers.Serializer):
            id = serializers.UUIDField()
            kind = serializers.ChoiceField(choices=Entity.Kind.choices)
            url = serializers.CharField()
            category = serializers.ChoiceField(choices=PolicyCategory.choices)
            blocked_at = serializers.DateTimeField()

        cursor = serializers.CharField(help_text="Poll `?since=` this to get every change after this list.")
        entities = BlockedSerializer(many=True)
        count = serializers.IntegerField(help_text="Written last: an answer without it was cut off in transit.")

    class OutputSerializer(serializers.Serializer):
        class ChangeSerializer(serializers.Serializer):
            class ChangedEntitySerializer(serializers.Serializer):
                id = serializers.UUIDField(source="entity__public_id")
                url = serializers.CharField(source="entity__url")
                kind = serializers.ChoiceField(source="entity__kind", choices=Entity.Kind.choices)

            sequence = serializers.IntegerField(source="id", help_text="Increases with every change, in commit order.")
            kind = serializers.ChoiceField(choices=BlocklistChange.Kind.choices)
            entity = ChangedEntitySerializer(source="*")
            category = serializers.CharField(help_text="The block's policy category; empty for an unblock.")
            at = serializers.DateTimeField(source="created_at")

        changes = ChangeSerializer(many=True)
        next = serializers.CharField(help_text="The cursor for the next poll.")
        has_more = serializers.BooleanField(help_text="More changes are waiting: poll again at once.")

    @extend_schema(
        operation_id="blocklist",
        summary="The blocklist: a full export, or the changes since a cursor",
        description=(
            "Scope: `blocklist`. Without `since`: every blocked entity, streamed as one JSON document, "
            "with the cursor that matches it exactly (also in the `X-Blocklist-Cursor` header). With "
            "`since`: blocks and unblocks after that cursor, in order, at most `limit`; follow `next`. "
            "A consumer that exports once and then polls with the cursor it was given never misses a "
            "change. Send `If-None-Match` with the last `ETag` to get 304 while nothing changed."
        ),
        parameters=[
            InputSerializer,
            OpenApiParameter("If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False),
        ],
        responses={
            200: PolymorphicProxySerializer(
                component_name="BlocklistAnswer",
                serializers=[ExportSerializer, OutputSerializer],
                resource_type_field_name=None,
            ),
            304: OpenApiResponse(description="Nothing changed since the ETag sent in If-None-Match."),
            **error_responses(400),
        },
    )
    def get(self, request: Request) -> HttpResponseBase:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        since = decode_cursor(params.validated_data["since"]) if "since" in params.validated_data else None
        latest = latest_change_id()
        if since is not None and since > latest:
            raise exceptions.ValidationError(
                ["This cursor is ahead of the blocklist: export again."], code="invalid_cursor"
            )
        # The whole answer for this URL is a function of the newest change, so that is the ETag.
        etag = f'"blocklist-{latest}"'
        # If-None-Match compares weakly: W/"x" matches "x".
        sent = {tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))}
        if {etag, "*"} & sent:
            response: HttpResponseBase = HttpResponseNotModified()
        elif since is None:
            response = StreamingHttpResponse(_export_lines(latest), content_type="application/json")
            response["X-Blocklist-Cursor"] = encode_cursor(latest)
        else:
            limit = params.validated_data["limit"]
            rows = list(
                BlocklistChange.objects.filter(id__gt=since, id__lte=latest)
                .order_by("id")
                .values("id", "kind", "category", "created_at", "entity__public_id", "entity__url", "entity__kind")[
                    : limit + 1
                ]
            )
            has_more, rows = len(rows) > limit, rows[:limit]
            next_cursor = encode_cursor(rows[-1]["id"] if rows else since)
            response = Response(
                self.OutputSerializer({"changes": rows, "next": next_cursor, "has_more": has_more}).data
            )
            response["X-Blocklist-Cursor"] = next_cursor
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        return response


# ---------------------------------------------------------------------------------------------
# Block and unblock


class DecisionSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    kind = serializers.ChoiceField(choices=Decision.Kind.choices)
    category = serializers.CharField(help_text="The policy category of a block; empty for an unblock.")
    statement = serializers.CharField(help_text="The statement of reasons.")
    case = serializers.CharField(source="case.reference", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class DecisionOutputSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when the entity already was in that state (nothing recorded).")
    decision = DecisionSerializer(allow_null=True, help_text="The decision now in force; null if there never was one.")
    entity = EntitySummarySerializer()


def _case_of(reference: str | None, entity: Entity) -> Case | None:
    if not reference:
        return None
    case = Case.objects.filter(reference=normalise_reference(reference), entities=entity).first()
    if case is None:
        raise exceptions.ValidationError({"case": [f"{reference} is no case naming this entity."]})
    return case


def _entity(public_id: str) -> Entity:
    entity = Entity.objects.filter(public_id=public_id).first()
    if entity is None:
        raise exceptions.NotFound("No such entity.")
    return entity


def _decision_answer(entity: Entity, decision: Decision | None, kind: Decision.Kind) -> Response:
    changed = decision is not None
    if decision is None:
        decision = (
            Decision.objects.filter(entity=entity, kind=kind)
            .select_related("case")
            .order_by("-created_at", "-id")
            .first()
        )
    entity.refresh_from_db(fields=["status"])
    return Response(DecisionOutputSerializer({"changed": changed, "decision": decision, "entity": entity}).data)


class EntityBlockApi(APIView):
    required_scope = "decide"

    class InputSerializer(serializers.Serializer):
        category = serializers.ChoiceField(choices=PolicyCategory.choices)
        statement = serializers.CharField(max_length=10_000, help_text="The statement of reasons.")
        case = serializers.CharField(
            max_length=20,
            required=False,
            allow_blank=True,
            help_text="A case naming the entity: it becomes actioned, as when blocking from the case page.",
        )

    @extend_schema(
        operation_id="entities_block",
        summary="Block an entity",
        description="Scope: `decide`. Idempotent: blocking a blocked entity answers 200 with "
        '`"changed": false` and the block in force. Private chats are out of scope (400).',
        request=InputSerializer,
        responses={200: DecisionOutputSerializer, **error_responses(400, 404)},
    )
    def post(self, request: Request, public_id: str) -> Response:
        entity = _entity(public_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        decision = do_block_entity(
            entity,
            category=data["category"],
            statement=data["statement"],
            actor=api_actor(request),
            case=_case_of(data.get("case"), entity),
        )
        return _decision_answer(entity, decision, Decision.Kind.BLOCK)


class EntityUnblockApi(APIView):
    required_scope = "decide"

    class InputSerializer(serializers.Serializer):
        statement = serializers.CharField(max_length=10_000, help_text="The statement of reasons.")
        case = serializers.CharField(max_length=20, required=False, allow_blank=True)

    @extend_schema(
        operation_id="entities_unblock",
        summary="Unblock an entity",
        description="Scope: `decide`. An API key with this scope may lift any block; staff signed in "
        "with a session follow the workspace rule (a lead, or whoever blocked it). Idempotent: "
        'unblocking an active entity answers 200 with `"changed": false`.',
        request=InputSerializer,
        responses={200: DecisionOutputSerializer, **error_responses(400, 404)},
    )
    def post(self, request: Request, public_id: str) -> Response:
        entity = _entity(public_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        decision = do_unblock_entity(
            entity,
            statement=data["statement"],
            actor=api_actor(request),
            case=_case_of(data.get("case"), entity),
            # The key's `decide` scope is the permission; staff keep the lead-or-blocker rule.
            authorized=api_key_of(request) is not None,
        )
        return _decision_answer(entity, decision, Decision.Kind.UNBLOCK)


# ---------------------------------------------------------------------------------------------
# Audit log


class AuditListApi(APIView):
    required_scope = "audit"
    pagination_class = ApiCursorPagination

    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
        actor = serializers.CharField(
            max_length=150, required=False, help_text='The actor label: a username or "api:<key name>".'
        )
        case = serializers.CharField(max_length=20, required=False, help_text="A case reference.")
        entity = serializers.CharField(max_length=2048, required=False, help_text="An entity, in any spelling.")
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        action = serializers.ChoiceField(choices=AuditAction.choices)
        actor = serializers.CharField(source="actor.get_username", allow_null=True, default=None)
        actor_label = serializers.CharField()
        ip = serializers.IPAddressField(allow_null=True)
        case = serializers.CharField(source="case.reference", allow_null=True, default=None)
        entity = serializers.CharField(source="entity.url", allow_null=True, default=None)
        report = serializers.UUIDField(source="report.public_id", allow_null=True, default=None)
        data = serializers.JSONField(help_text='The change, as {"old", "new"} and context.')
        prev_hash = serializers.CharField()
        hash = serializers.CharField(
            help_text=(
                "HMAC-SHA256 with the desk's audit key (plain SHA-256 before the key was set) over the entry "
                "and prev_hash: the chain makes edits visible."
            )
        )

    @extend_schema(
        operation_id="audit_list",
        summary="The audit log, newest first",
        description="Scope: `audit`. Filters combine; pages follow `next` (an opaque cursor).",
        parameters=[InputSerializer],
        responses={200: OutputSerializer(many=True), **error_responses(400)},
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data: dict[str, Any] = params.validated_data
        entries = audit_entries(
            AuditFilters(
                action=data.get("action", ""),
                actor=data.get("actor", ""),
                case=data.get("case", ""),
                entity=data.get("entity", ""),
                since=data.get("since"),
                until=data.get("until"),
            )
        )
        paginator = self.pagination_class()
        paginator.ordering = "-id"
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
