"""The audited actions of known content: imports, banks, a blocked case's media banked."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from moderation.actions import Actor, do_block_entity
from moderation.known_content.actions import do_add_case_media_to_bank, do_import_hashes, do_save_hash_bank
from moderation.known_content.lists import read_hash_list
from moderation.models import AuditAction, AuditEntry, BankedHash, HashBank
from reports import mediahash
from reports.models import Case
from tests.images import encoded, photo

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
LIST = (
    f"hash_type,hash_value,label,source,date\nmd5,{MD5},flyer,TCAP,2026-11-01\nsha256,{SHA},flyer,TCAP,\nmd5,bad,,,\n"
)


def _import(text: str, actor: Actor, bank: str = "tcap") -> object:
    return do_import_hashes(bank, read_hash_list(text.encode(), filename="t.csv"), filename="t.csv", actor=actor)


def test_an_import_records_one_audit_entry_with_its_counts_and_rejected_rows(db: None, alice: User) -> None:
    result = _import(LIST, Actor(alice, ip="192.0.2.1"))
    bank = HashBank.objects.get(name="tcap")
    assert bank.revision == 1
    assert sorted(BankedHash.objects.values_list("kind", "value", "label", "source")) == [
        ("md5", MD5, "flyer", "TCAP"),
        ("sha256", SHA, "flyer", "TCAP"),
    ]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.ip, entry.case) == (AuditAction.HASHES_IMPORTED, alice, "192.0.2.1", None)
    assert entry.data == {
        "bank": "tcap",
        "file": "t.csv",
        "bank_created": True,
        "old": None,
        "new": {"added": 2, "by_kind": {"md5": 1, "sha256": 1}},
        "already_in_bank": 0,
        "rejected": 1,
        "rejected_rows": [{"line": 4, "why": "md5 value 'bad' is not 32 hex digits"}],
    }
    assert (result.added, result.already, result.rejected) == (2, 0, 1)  # type: ignore[attr-defined]


def test_importing_the_same_list_again_changes_and_records_nothing(db: None, alice: User) -> None:
    _import(LIST, Actor(alice))
    result = _import(LIST, Actor(alice))
    assert (result.added, result.already, result.rejected) == (0, 2, 1)  # type: ignore[attr-defined]
    assert AuditEntry.objects.count() == 1
    assert BankedHash.objects.count() == 2
    assert HashBank.objects.get().revision == 1


def test_a_hash_repeated_within_a_list_is_added_once(db: None, alice: User) -> None:
    result = _import(f"md5\n{MD5}\n{MD5.upper()}\n", Actor(alice))
    assert (result.added, result.already) == (1, 1)  # type: ignore[attr-defined]


def test_a_bank_needs_a_usable_name(db: None, alice: User) -> None:
    with pytest.raises(ValidationError):
        _import(LIST, Actor(alice), bank="!!!")
    assert not AuditEntry.objects.exists()


def test_the_import_command_prints_counts_and_every_rejected_line(db: None, tmp_path: object) -> None:
    path = tmp_path / "tcap.csv"  # type: ignore[operator]
    path.write_text(LIST)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_hashes", str(path), "--bank", "tcap", stdout=out, stderr=err)
    assert out.getvalue() == "tcap (new bank): 2 added (md5 1, sha256 1), 0 already there, 1 rejected\n"
    assert err.getvalue() == f"{path}:4: md5 value 'bad' is not 32 hex digits\n"
    assert AuditEntry.objects.get().actor_label == "cli:import_hashes"
    call_command("import_hashes", str(path), "--bank", "tcap", stdout=out, stderr=io.StringIO())
    assert out.getvalue().endswith("tcap: 0 added, 2 already there, 1 rejected\n")
    with pytest.raises(CommandError, match="not valid JSON"):
        (tmp_path / "x.json").write_text("[{")  # type: ignore[operator]
        call_command("import_hashes", str(tmp_path / "x.json"), "--bank", "tcap")  # type: ignore[operator]


def test_saving_a_bank_is_audited_and_switching_it_off_bumps_its_revision(db: None, alice: User) -> None:
    bank = HashBank(name="own", description="our blocks")
    assert do_save_hash_bank(bank, actor=Actor(alice))
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.data) == (
        AuditAction.HASH_BANK_SAVED, alice,
        {"bank": bank.pk, "old": None, "new": {"name": "own", "description": "our blocks", "active": True}},
    )  # fmt: skip
    assert not do_save_hash_bank(HashBank.objects.get(pk=bank.pk), actor=Actor(alice))
    assert AuditEntry.objects.count() == 1
    bank.active = False
    assert do_save_hash_bank(bank, actor=Actor(alice))
    assert HashBank.objects.get(pk=bank.pk).revision == 1
    assert AuditEntry.objects.order_by("id").last().data["new"]["active"] is False  # type: ignore[union-attr]


@pytest.fixture
def own_bank(db: None, alice: User) -> HashBank:
    bank = HashBank(name="own")
    do_save_hash_bank(bank, actor=Actor(None, label="setup"))
    return bank


def _blocked_media_case(report_media: Callable[..., Case], actor: Actor) -> Case:
    case = report_media((encoded(photo(1)), "image/png", "poster.png"), (b"a note", "text/plain", "n.txt"))
    do_block_entity(case.entities.get(), category="terrorism", statement="propaganda channel", actor=actor, case=case)
    return case


def test_a_lead_adds_a_blocked_cases_images_to_a_bank(
    report_media: Callable[..., Case], own_bank: HashBank, lead: User
) -> None:
    case = _blocked_media_case(report_media, Actor(lead))
    png = encoded(photo(1))
    attachment = case.reports.get().attachments.get(filename="poster.png")
    pdq = mediahash.hash_media(png, "image/png", seconds=5).pdq
    before = AuditEntry.objects.count()
    assert do_add_case_media_to_bank(case, bank=own_bank, label="IS poster", actor=Actor(lead, ip="192.0.2.9")) == 3
    assert sorted(
        BankedHash.objects.values_list("kind", "value", "label", "source", "quality", "attachment")
    ) == sorted(
        [
            ("md5", hashlib.md5(png).hexdigest(), "IS poster", case.reference, None, attachment.pk),
            ("sha256", hashlib.sha256(png).hexdigest(), "IS poster", case.reference, None, attachment.pk),
            ("pdq", pdq, "IS poster", case.reference, 100, attachment.pk),
        ]
    )
    entry = AuditEntry.objects.order_by("id").last()
    assert AuditEntry.objects.count() == before + 1
    assert (entry.action, entry.actor, entry.case, entry.ip) == (  # type: ignore[union-attr]
        AuditAction.CASE_MEDIA_BANKED, lead, case, "192.0.2.9",
    )  # fmt: skip
    assert entry.data["bank"] == "own" and entry.data["label"] == "IS poster"  # type: ignore[union-attr]
    assert sorted(h["kind"] for h in entry.data["new"]) == ["md5", "pdq", "sha256"]  # type: ignore[union-attr]
    # The second time there is nothing new, and nothing is recorded.
    assert do_add_case_media_to_bank(case, bank=own_bank, label="IS poster", actor=Actor(lead)) == 0
    assert AuditEntry.objects.count() == before + 1


def test_an_open_cases_media_cannot_be_banked(
    report_media: Callable[..., Case], own_bank: HashBank, lead: User
) -> None:
    case = report_media((encoded(photo(1)), "image/png", "poster.png"))
    with pytest.raises(ValidationError, match="only a blocked case"):
        do_add_case_media_to_bank(case, bank=own_bank, label="x", actor=Actor(lead))
    assert not BankedHash.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.CASE_MEDIA_BANKED).exists()


def test_banking_needs_a_label_and_an_active_bank(
    report_media: Callable[..., Case], own_bank: HashBank, lead: User
) -> None:
    case = _blocked_media_case(report_media, Actor(lead))
    with pytest.raises(ValidationError, match="label is required"):
        do_add_case_media_to_bank(case, bank=own_bank, label="  ", actor=Actor(lead))
    HashBank.objects.filter(pk=own_bank.pk).update(active=False)
    with pytest.raises(ValidationError, match="inactive"):
        do_add_case_media_to_bank(case, bank=own_bank, label="x", actor=Actor(lead))
    assert not BankedHash.objects.exists()
