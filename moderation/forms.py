"""Forms of the moderator workspace: they validate input; actions do the changing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from moderation.models import AuditAction, DeclineReason, PolicyCategory
from moderation.staff import roles
from reports.models import Case, Entity, Reporter

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
    status = forms.ChoiceField(choices=STATUS_FILTERS, required=False)
    category = forms.ChoiceField(choices=[("", _("any category")), *PolicyCategory.choices], required=False)
    language = forms.CharField(max_length=8, required=False)
    kind = forms.ChoiceField(choices=[("", _("any kind")), *Entity.Kind.choices], required=False)
    assignee = forms.CharField(max_length=150, required=False)
    mine = forms.BooleanField(required=False)
    unassigned = forms.BooleanField(required=False)
    blocked = forms.BooleanField(required=False, label=_("has a blocked entity"))
    q = forms.CharField(max_length=200, required=False, label=_("search"))
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False)
    after = forms.CharField(max_length=100, required=False)


class CaseVersionForm(forms.Form):
    """Carries the case's `updated_at` as rendered, so a late writer learns what changed meanwhile."""

    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_version(self) -> datetime | None:
        raw = self.cleaned_data["version"]
        try:
            return datetime.fromisoformat(raw) if raw else None
        except ValueError:
            return None


class AssignForm(CaseVersionForm):
    assignee = forms.ModelChoiceField(
        queryset=User.objects.none(), to_field_name="username", required=False, empty_label=_("nobody")
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = staff_who_moderate()  # type: ignore[attr-defined]


class StatusForm(CaseVersionForm):
    status = forms.ChoiceField(choices=[(s.value, s.label) for s in Case.OPEN_STATUSES])


class PriorityForm(CaseVersionForm):
    priority = forms.TypedChoiceField(choices=Case.Priority.choices, coerce=int)


class CategoryForm(CaseVersionForm):
    category = forms.ChoiceField(choices=[("", _("none")), *PolicyCategory.choices], required=False)


class BlockForm(CaseVersionForm):
    category = forms.ChoiceField(choices=PolicyCategory.choices)
    statement = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, strip=True)


class UnblockForm(CaseVersionForm):
    statement = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, strip=True)


class DeclineForm(CaseVersionForm):
    reason = forms.ChoiceField(choices=DeclineReason.choices)
    statement = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, strip=True)


class NoteForm(CaseVersionForm):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20_000, strip=True)


def _case_by_reference(reference: str) -> Case:
    case = Case.objects.filter(reference__iexact=reference.strip()).first()
    if case is None:
        raise forms.ValidationError(_("There is no case %(reference)s."), params={"reference": reference})
    return case


class MergeForm(CaseVersionForm):
    into = forms.CharField(max_length=20, label=_("merge into case"))

    def clean_into(self) -> Case:
        return _case_by_reference(self.cleaned_data["into"])


class MoveReportForm(CaseVersionForm):
    to = forms.CharField(max_length=20, label=_("move to case"))

    def clean_to(self) -> Case:
        return _case_by_reference(self.cleaned_data["to"])


class SplitForm(CaseVersionForm):
    pass


class BulkForm(forms.Form):
    ACTIONS = [
        ("assign_me", _("assign to me")),
        ("status", _("set status")),
        ("decline", _("decline")),
        ("block", _("block all entities")),
    ]
    cases = forms.MultipleChoiceField(choices=[])
    action = forms.ChoiceField(choices=ACTIONS)
    status = forms.ChoiceField(choices=[("", "—"), *[(s.value, s.label) for s in Case.OPEN_STATUSES]], required=False)
    reason = forms.ChoiceField(choices=[("", "—"), *DeclineReason.choices], required=False)
    category = forms.ChoiceField(choices=[("", "—"), *PolicyCategory.choices], required=False)
    statement = forms.CharField(max_length=5000, required=False, strip=True)
    back = forms.CharField(max_length=2000, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wanted = self.data.getlist("cases") if hasattr(self.data, "getlist") else []
        # Only references that exist are valid choices; the view fetches them again with a lock.
        existing = Case.objects.filter(reference__in=wanted[:500]).values_list("reference", flat=True)
        self.fields["cases"].choices = [(ref, ref) for ref in existing]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action")
        needs = {"status": ["status"], "decline": ["reason", "statement"], "block": ["category", "statement"]}
        for field in needs.get(action or "", []):
            if not data.get(field):
                self.add_error(field, _("Required for this action."))
        return data


class AuditFilterForm(forms.Form):
    actor = forms.CharField(max_length=150, required=False)
    action = forms.ChoiceField(choices=[("", _("any action")), *AuditAction.choices], required=False)
    case = forms.CharField(max_length=20, required=False, label=_("case reference"))
    entity = forms.CharField(max_length=300, required=False, label=_("entity URL"))
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


# A storm case has thousands of reporters: the menu lists the most recent ones; "every
# reporter" reaches them all, and any reporter of the case is still accepted by id.
REPLY_MENU_REPORTERS = 50


class ReplyForm(CaseVersionForm):
    template = forms.ModelChoiceField(queryset=None)  # type: ignore[arg-type]
    reporter = forms.CharField(widget=forms.Select)

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        from moderation.models import ReplyTemplate
        from reports.models import Report

        super().__init__(*args, **kwargs)
        self.case = case
        self.fields["template"].queryset = ReplyTemplate.objects.filter(active=True)  # type: ignore[attr-defined]
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
        self.fields["reporter"].widget.choices = [  # type: ignore[attr-defined]
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
