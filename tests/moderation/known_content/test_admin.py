"""Hash banks in admin: leads upload lists (audited, rejected rows shown with their lines) and
keep banks; moderators do not see them."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from moderation.models import AuditAction, AuditEntry, BankedHash, HashBank

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
IMPORT = "/admin/moderation/hashbank/import/"


def _upload(text: str, name: str = "gifct.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_a_lead_imports_a_list_through_admin(as_lead: Client, lead: User) -> None:
    assert as_lead.get("/admin/moderation/hashbank/").content.decode().count(IMPORT) == 1
    response = as_lead.post(IMPORT, {"bank": "GIFCT", "file": _upload(f"md5,label\n{MD5},flyer\n"), "source": "GIFCT"})
    assert (response.status_code, response["Location"]) == (302, "/admin/moderation/hashbank/")
    assert list(BankedHash.objects.values_list("bank__name", "kind", "value", "label", "source")) == [
        ("gifct", "md5", MD5, "flyer", "GIFCT")
    ]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.data["file"], entry.data["new"]["added"]) == (
        AuditAction.HASHES_IMPORTED, lead, "gifct.csv", 1,
    )  # fmt: skip


def test_rejected_rows_are_shown_with_their_line_numbers(as_lead: Client) -> None:
    response = as_lead.post(IMPORT, {"bank": "gifct", "file": _upload(f"md5\n{MD5}\nnope\n")})
    content = response.content.decode()
    assert response.status_code == 200
    assert '<table id="rejected-rows">' in content
    assert "<tr><td>3</td><td>md5 value &#x27;nope&#x27; is not 32 hex digits</td></tr>" in content
    assert "Gifct: 1 hash(es) added, 0 already there, 1 row(s) rejected." in content  # admin capitalises
    assert BankedHash.objects.count() == 1


def test_a_file_that_is_no_hash_list_imports_nothing(as_lead: Client) -> None:
    response = as_lead.post(IMPORT, {"bank": "gifct", "file": _upload("name\nx\n")})
    assert "the CSV header names no hash column" in response.content.decode()
    assert not HashBank.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_bank_saved_in_admin_is_audited_and_cannot_be_deleted(as_lead: Client, lead: User) -> None:
    response = as_lead.post("/admin/moderation/hashbank/add/", {"name": "own", "description": "ours", "active": "on"})
    assert response.status_code == 302
    bank = HashBank.objects.get()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.data["new"]) == (
        AuditAction.HASH_BANK_SAVED, lead, {"name": "own", "description": "ours", "active": True},
    )  # fmt: skip
    assert as_lead.post(f"/admin/moderation/hashbank/{bank.pk}/delete/", {"post": "yes"}).status_code == 403
    assert HashBank.objects.exists()


def test_moderators_cannot_see_or_import_banks(as_moderator: Client, moderator: User) -> None:
    moderator.is_staff = True
    moderator.save(update_fields=["is_staff"])
    assert as_moderator.get("/admin/moderation/hashbank/").status_code == 403
    assert as_moderator.post(IMPORT, {"bank": "x", "file": _upload(f"md5\n{MD5}\n")}).status_code == 403
    assert not BankedHash.objects.exists()
