"""Reply templates: placeholders, rendering as data, and saving a template.

Placeholders are `{name}` from a fixed set. Rendering is one regex pass over the *template*: a
value is inserted as it is and never scanned again, so a reporter whose display name is
`{case_reference}` or `{% debug %}` gets exactly that text back. No Django template engine is
involved, and a template may not contain Django template syntax at all, so nobody mistakes one for
the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from moderation.actions import Actor
from moderation.audit import record
from moderation.models import (
    AuditAction,
    Decision,
    DeclineReason,
    PolicyCategory,
    ReplyTemplate,
)
from reports.models import Case, Entity, Reporter
from reports.tokens import make_case_token

PLACEHOLDERS: dict[str, str] = {
    "case_reference": "the case reference, e.g. AD-000123",
    "reporter_name": "the reporter's display name, or their address when they gave none",
    "entity_list": "the entities this reporter named in the case, one per line",
    "decision": "the latest decision on the case (blocked, unblocked, declined, or under review)",
    "category": "the policy category of a block, or the reason of a decline",
}
ACK_PLACEHOLDERS = ("case_reference",)
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]*)\}")
_DJANGO_SYNTAX = re.compile(r"\{[{%#]|[}%#]\}")
# Everything that ends a header line or reorders its text: C0 and C1 controls, the line and
# paragraph separators (Python's email package folds on them and then refuses the header, so one
# reporter's name in a subject made every reply to them fail), and the bidi embeddings,
# overrides and isolates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")


def check_reply_template(subject: str, body: str, *, purpose: str = "") -> None:
    """Raise ValidationError naming every unknown placeholder or Django template tag in a template.

    Acknowledgements go out unreviewed to whatever address a mail claimed, so they may use only
    `{case_reference}`: nothing a sender chose (name, links) is echoed (SECURITY rule 5, T10).
    """
    allowed = ACK_PLACEHOLDERS if purpose == ReplyTemplate.Purpose.ACKNOWLEDGEMENT else tuple(PLACEHOLDERS)
    errors: dict[str, list[str]] = {}
    for field, text in (("subject", subject), ("body", body)):
        problems: list[str] = []
        unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in allowed})
        if unknown:
            problems.append(
                "Unknown placeholder(s): {}. Allowed: {}.".format(
                    ", ".join("{" + name + "}" for name in unknown),
                    ", ".join("{" + name + "}" for name in allowed),
                )
            )
        if _DJANGO_SYNTAX.search(text):
            problems.append("Django template syntax is not supported here; use {placeholder}.")
        if problems:
            errors[field] = problems
    if _CONTROL.search(subject):
        errors.setdefault("subject", []).append("The subject must be one line.")
    if errors:
        raise ValidationError(errors)


def render_text(text: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders in one pass; inserted values are data and are never re-scanned."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def template_for_reporter(template: ReplyTemplate, reporter: Reporter) -> ReplyTemplate:
    """The active template of the same name in the reporter's language, else `template` itself."""
    language = (reporter.language or "").lower()
    if not language or language == template.language.lower():
        return template
    return ReplyTemplate.objects.filter(name=template.name, language__iexact=language, active=True).first() or template


@transaction.atomic
def do_save_reply_template(template: ReplyTemplate, *, actor: Actor) -> bool:
    """Validate and save a template (new or changed); an unchanged template records nothing."""
    template.full_clean(exclude=["updated_at"])
    fields = ("name", "purpose", "language", "subject", "body", "active")
    new = {f: getattr(template, f) for f in fields}
    old = None
    if template.pk is not None:
        old = ReplyTemplate.objects.select_for_update().filter(pk=template.pk).values(*fields).first()
        if old == new:
            return False
    template.updated_at = timezone.now()
    template.save()
    changed = {f: old[f] for f in fields if old[f] != new[f]} if old else None
    record(
        AuditAction.TEMPLATE_SAVED,
        actor=actor.user,
        actor_label=actor.label,
        ip=actor.ip,
        data={
            "old": changed,
            "new": {f: new[f] for f in fields if old is None or f in (changed or {})},
            "template": template.pk,
        },
    )
    return True


def _one_line(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()


def placeholder_values(case: Case, reporter: Reporter, *, language: str) -> dict[str, str]:
    """The placeholder values for one reporter; only facts about the case and that reporter's own
    entities, never another reporter's words (SECURITY rule 5)."""
    urls = (
        Entity.objects.filter(reports__case=case, reports__reporter=reporter)
        .order_by("url")
        .values_list("url", flat=True)
        .distinct()
    )
    decision = Decision.objects.filter(case=case).order_by("-created_at", "-id").first()
    with translation.override(language or settings.LANGUAGE_CODE):
        if decision is None:
            decision_text, category = gettext("under review"), ""
        else:
            decision_text = str(
                {
                    Decision.Kind.BLOCK: gettext("blocked"),
                    Decision.Kind.UNBLOCK: gettext("unblocked"),
                    Decision.Kind.DECLINE: gettext("declined"),
                }[Decision.Kind(decision.kind)]
            )
            if decision.kind == Decision.Kind.DECLINE and decision.decline_reason:
                category = str(DeclineReason(decision.decline_reason).label)
            elif decision.category:
                category = str(PolicyCategory(decision.category).label)
            else:
                category = ""
    return {
        "case_reference": case.reference or "",
        "reporter_name": _one_line(reporter.display_name) or reporter.email,
        "entity_list": "\n".join(f"- {url}" for url in urls[:200]),
        "decision": decision_text,
        "category": category,
    }


def render_reply(template: ReplyTemplate, case: Case, reporter: Reporter) -> tuple[str, str]:
    """(subject, body) of `template` for one reporter; the subject carries the signed case token."""
    values = placeholder_values(case, reporter, language=template.language)
    subject = _one_line(render_text(template.subject, {k: _one_line(v) for k, v in values.items()}))
    token = make_case_token(case.reference or "")
    return f"[{token}] {subject}"[:998], render_text(template.body, values)


def render_template_preview(template: ReplyTemplate, case: Case, reporter: Reporter) -> tuple[str, str]:
    """Exactly what `do_queue_replies()` would send this reporter: the template in their language."""
    return render_reply(template_for_reporter(template, reporter), case, reporter)
