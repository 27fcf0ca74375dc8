"""Forms of the moderator workspace: they validate input; actions do the changing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from moderation.models import AuditAction, DeclineReason, PolicyCategory, ReplyTemplate
from moderation.staff import roles
from reports.models import Case, Entity, Report, Reporter

User = get_user_model()

STATUS_FILTERS = [("open", _("open (new, open, waiting)")), ("all", _("all")), *Case.Status.choices]
SORT_CHOICES = [("newest", _("newest")), ("oldest", _("oldest waiting")), ("reports", _("most reports"))]


def staff_who_moderate() -> QuerySet[Any]:
    return (
        User.objects.filter(is_active=True, is_staff=True)
        .filter(Q(groups__name__in=[roles.MODERATOR, roles.LEAD]) | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


class QueueFilterForm(forms.Form):
    """The queue's filter bar. `counts` and `languages` only label and fill its menus: give them
    when the bar is rendered, leave them out when the form only reads a request."""

    q = forms.CharField(
        max_length=200,
        required=False,
        label=_("Search"),
        widget=forms.TextInput(
            attrs={"type": "search", "id": "queue-search", "placeholder": _("subject, text, t.me/…, reporter, AD-…")}
        ),
    )
    status = forms.ChoiceField(choices=STATUS_FILTERS, required=False, label=_("Status"))
    category = forms.ChoiceField(
        choices=[("", _("any category")), *PolicyCategory.choices], required=False, label=_("Category")
    )
    # Any language code is accepted; the menu offers the ones reports have.
    language = forms.CharField(max_length=8, required=False, label=_("Language"), widget=forms.Select)
    kind = forms.ChoiceField(
        choices=[("", _("any kind")), *Entity.Kind.choices], required=False, label=_("Entity kind")
    )
    assignee = forms.CharField(max_length=150, required=False, label=_("Assignee (username)"))
    mine = forms.BooleanField(required=False, label=_("mine"))
    unassigned = forms.BooleanField(required=False, label=_("unassigned"))
    blocked = forms.BooleanField(required=False, label=_("has a blocked entity"))
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False, label=_("Sort"))
    after = forms.CharField(max_length=100, required=False, widget=forms.HiddenInput)

    def __init__(
        self, *args: Any, counts: Mapping[str, int] | None = None, languages: Sequence[str] = (), **kwargs: Any
    ) -> None:
        kwargs.setdefault("auto_id", "filter-%s")
        super().__init__(*args, **kwargs)
        if counts is not None:
            status = cast(forms.ChoiceField, self.fields["status"])
            status.choices = [(value, f"{label} ({counts.get(value, 0)})") for value, label in STATUS_FILTERS]
            for name in ("mine", "unassigned"):
                self.fields[name].label = f"{self.fields[name].label} ({counts.get(name, 0)})"
        menu = cast(forms.Select, self.fields["language"].widget)
        menu.choices = [("", _("any language")), *[(language, language) for language in languages]]


class CaseVersionForm(forms.Form):
    """Carries the case's `updated_at` as rendered, so a late writer learns what changed meanwhile.

    Several of these share the case page: give each instance its own `auto_id` (for example
    "block-<entity>-%s") so that labels, error lists and `aria-describedby` point at its own fields.
    """

    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_version(self) -> datetime | None:
        raw = self.cleaned_data["version"]
        try:
            return datetime.fromisoformat(raw) if raw else None
        except ValueError:
            return None


class AssignForm(CaseVersionForm):
    assignee = forms.ModelChoiceField(
        queryset=staff_who_moderate(),
        to_field_name="username",
        required=False,
        empty_label=_("nobody"),
        label=_("Assignee"),
    )


class StatusForm(CaseVersionForm):
    status = forms.ChoiceField(choices=[(s.value, s.label) for s in Case.OPEN_STATUSES], label=_("Status"))


class PriorityForm(CaseVersionForm):
    priority = forms.TypedChoiceField(choices=Case.Priority.choices, coerce=int, label=_("Priority"))


class CategoryForm(CaseVersionForm):
    category = forms.ChoiceField(
        choices=[("", _("none")), *PolicyCategory.choices], required=False, label=_("Category")
    )


class BlockForm(CaseVersionForm):
    # No category is preselected unless the case has one: a block must never go out under a
    # category nobody chose.
    category = forms.ChoiceField(choices=[("", _("choose…")), *PolicyCategory.choices], label=_("Policy category"))
    statement = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, strip=True, label=_("Statement of reasons")
    )


class UnblockForm(CaseVersionForm):
    statement = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, strip=True, label=_("Reason for unblocking")
    )


class DeclineForm(CaseVersionForm):
    reason = forms.ChoiceField(choices=DeclineReason.choices, label=_("Decline because"))
    statement = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, strip=True, label=_("Statement of reasons")
    )


class NoteForm(CaseVersionForm):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20_000, strip=True, label=_("New note"))


def _case_by_reference(reference: str) -> Case:
    case = Case.objects.filter(reference__iexact=reference.strip()).first()
    if case is None:
        raise forms.ValidationError(_("There is no case %(reference)s."), params={"reference": reference})
    return case


# A reference is short: a narrow box with its shape as the hint.
REFERENCE_INPUT = forms.TextInput(attrs={"size": 10, "placeholder": "AD-…"})


class MergeForm(CaseVersionForm):
    into = forms.CharField(max_length=20, label=_("Merge this case into"), widget=REFERENCE_INPUT)

    def clean_into(self) -> Case:
        return _case_by_reference(self.cleaned_data["into"])


class MoveReportForm(CaseVersionForm):
    to = forms.CharField(max_length=20, label=_("Move to case"), widget=REFERENCE_INPUT)

    def clean_to(self) -> Case:
        return _case_by_reference(self.cleaned_data["to"])


class SplitForm(CaseVersionForm):
    pass


class BulkForm(forms.Form):
    """The queue's bulk action. The case checkboxes are the table's rows and the query to go back
    to is the page's own, so the template renders only the action's fields from here."""

    ACTIONS = [
        ("assign_me", _("assign to me")),
        ("status", _("set status")),
        ("decline", _("decline")),
        ("block", _("block all entities")),
    ]
    cases = forms.MultipleChoiceField(choices=[])
    action = forms.ChoiceField(choices=ACTIONS, label=_("action"))
    status = forms.ChoiceField(
        choices=[("", "—"), *[(s.value, s.label) for s in Case.OPEN_STATUSES]], required=False, label=_("status")
    )
    reason = forms.ChoiceField(choices=[("", "—"), *DeclineReason.choices], required=False, label=_("reason"))
    category = forms.ChoiceField(choices=[("", "—"), *PolicyCategory.choices], required=False, label=_("category"))
    statement = forms.CharField(max_length=5000, required=False, strip=True, label=_("statement"))
    back = forms.CharField(max_length=2000, required=False, widget=forms.HiddenInput)

    ACTION_FIELDS = ("action", "status", "reason", "category", "statement")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "bulk-%s")
        super().__init__(*args, **kwargs)
        wanted = self.data.getlist("cases") if hasattr(self.data, "getlist") else []
        # Only references that exist are valid choices; the view fetches them again with a lock.
        existing = Case.objects.filter(reference__in=wanted[:500]).values_list("reference", flat=True)
        cast(forms.MultipleChoiceField, self.fields["cases"]).choices = [(ref, ref) for ref in existing]

    def action_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.ACTION_FIELDS]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action")
        needs = {"status": ["status"], "decline": ["reason", "statement"], "block": ["category", "statement"]}
        for field in needs.get(action or "", []):
            if not data.get(field):
                self.add_error(field, _("Required for this action."))
        return data


class AuditFilterForm(forms.Form):
    actor = forms.CharField(max_length=150, required=False, label=_("Actor"))
    action = forms.ChoiceField(choices=[("", _("any action")), *AuditAction.choices], required=False, label=_("Action"))
    case = forms.CharField(max_length=20, required=False, label=_("Case"))
    entity = forms.CharField(max_length=300, required=False, label=_("Entity URL"))
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label=_("From"))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label=_("Until"))
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "audit-%s")
        super().__init__(*args, **kwargs)


# A storm case has thousands of reporters: the menu lists the most recent ones; "every
# reporter" reaches them all, and any reporter of the case is still accepted by id.
REPLY_MENU_REPORTERS = 50


class ReplyForm(CaseVersionForm):
    template = forms.ModelChoiceField(queryset=ReplyTemplate.objects.filter(active=True), label=_("Template"))
    reporter = forms.CharField(widget=forms.Select, label=_("To"))

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.case = case
        # Walks the case-timeline index newest first instead of a DISTINCT over every report.
        recent: list[int] = []
        for reporter_id in (
            Report.objects.filter(case=case)
            .order_by("-received_at", "-id")
            .values_list("reporter_id", flat=True)[: REPLY_MENU_REPORTERS * 20]
        ):
            if reporter_id not in recent:
                recent.append(reporter_id)
                if len(recent) == REPLY_MENU_REPORTERS:
                    break
        emails = dict(Reporter.objects.filter(pk__in=recent).values_list("pk", "email"))
        cast(forms.Select, self.fields["reporter"].widget).choices = [
            ("all", _("every reporter of the case")),
            *[(str(pk), emails[pk]) for pk in recent],
        ]

    def clean_reporter(self) -> str:
        choice = self.cleaned_data["reporter"]
        if choice == "all":
            return choice
        if not choice.isdigit() or not Reporter.objects.filter(pk=int(choice), reports__case=self.case).exists():
            raise forms.ValidationError(_("Choose a reporter of this case."))
        return choice
