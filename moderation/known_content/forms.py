"""Forms of known content: a hash list upload (admin) and a case's media added to a bank."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from moderation.models import HashBank

# Larger lists go through `manage.py import_hashes`, which has no request to time out.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class HashListUploadForm(forms.Form):
    bank = forms.CharField(
        label=_("Bank"),
        max_length=64,
        help_text=_("The bank's name; a new name creates the bank."),
    )
    file = forms.FileField(
        label=_("Hash list"),
        help_text=_("CSV (with a header row), JSON or JSON Lines of MD5, SHA-256 or PDQ hashes, at most 20 MB."),
    )
    label = forms.CharField(
        label=_("Default label"), max_length=200, required=False, help_text=_("For rows that carry none.")
    )
    source = forms.CharField(
        label=_("Default source"), max_length=200, required=False, help_text=_("For rows that name none.")
    )

    def clean_file(self) -> object:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The list is larger than 20 MB: import it with manage.py import_hashes instead.")
            )
        return upload


class AddToBankForm(forms.Form):
    bank = forms.ModelChoiceField(
        label=_("Add this blocked case's images and videos to"),
        queryset=HashBank.objects.filter(active=True),
        empty_label=_("choose a bank…"),
    )
    label = forms.CharField(label=_("with the label"), max_length=200)

    def __init__(self, *args: object, **kwargs: object) -> None:
        # Ids of their own on a page full of forms.
        kwargs.setdefault("auto_id", "bank-%s")
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
