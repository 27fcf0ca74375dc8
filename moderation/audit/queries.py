"""Reading the audit log: one query, with one meaning per filter, for the audit page, its CSV export
and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from moderation.models import AuditEntry
from reports.queries import entity_url, normalise_reference


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What the audit log is asked for; an empty value means any.

    `action` is an AuditAction value; `actor` the actor label exactly as recorded (a username,
    "api:<key name>", "cli:<command>", "system"); `case` a case reference in any letter case;
    `entity` any spelling of an entity's link (t.me/Name, @name, a defanged or look-alike one),
    which matches the entity's canonical URL; `since` and `until` are inclusive bounds.
    """

    action: str = ""
    actor: str = ""
    case: str = ""
    entity: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_entries(filters: AuditFilters) -> QuerySet[AuditEntry]:
    """The entries matching every filter, newest first, with the rows a listing shows of each.

    Raises ValidationError naming the field `entity` when its value names no entity: matching it
    against nothing would answer "no entries", which is not what was asked.
    """
    entries = AuditEntry.objects.select_related("actor", "case", "entity", "report").order_by("-id")
    if filters.action:
        entries = entries.filter(action=filters.action)
    if filters.actor:
        entries = entries.filter(actor_label=filters.actor)
    if filters.case:
        entries = entries.filter(case__reference=normalise_reference(filters.case))
    if filters.entity:
        entries = entries.filter(entity__url=entity_url(filters.entity))
    if filters.since is not None:
        entries = entries.filter(created_at__gte=filters.since)
    if filters.until is not None:
        entries = entries.filter(created_at__lte=filters.until)
    return entries
