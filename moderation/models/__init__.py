"""Moderation's models, one module per capability; every model is importable from here."""

from __future__ import annotations

from moderation.models.audit import AuditAction, AuditEntry
from moderation.models.decisions import BlocklistChange, Decision, DeclineReason, PolicyCategory
from moderation.models.integrations import ApiKey, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from moderation.models.known_content import BankedHash, HashBank, HashKind, KnownContentMatch
from moderation.models.notes import Note
from moderation.models.replies import Reply, ReplyTemplate
from moderation.models.transparency import DailyCount, FirstDecision, RollupState

__all__ = [
    "ApiKey",
    "AuditAction",
    "AuditEntry",
    "BankedHash",
    "BlocklistChange",
    "DailyCount",
    "Decision",
    "DeclineReason",
    "FirstDecision",
    "HashBank",
    "HashKind",
    "KnownContentMatch",
    "Note",
    "PolicyCategory",
    "Reply",
    "ReplyTemplate",
    "RollupState",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
