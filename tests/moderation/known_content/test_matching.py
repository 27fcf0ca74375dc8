"""Matching new reports' attachments against hash banks: exact MD5 and SHA-256, PDQ within
distance 31 at quality 50 or more; a match is recorded as automated detection, tags the case and
raises its priority, and a human still decides."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

from django.core.management import call_command

from moderation.known_content import matching
from moderation.known_content.actions import do_record_known_content_matches
from moderation.known_content.queries import tags_by_case
from moderation.models import AuditAction, AuditEntry, HashBank, KnownContentMatch
from reports import mediahash
from reports.models import Attachment, Case, Entity
from tests.images import encoded, photo

PNG = encoded(photo(1))
PNG_PDQ = mediahash.hash_media(PNG, "image/png", seconds=5).pdq
# The same picture as someone else saved it: smaller, as a JPEG; its PDQ is a near neighbour.
COPY_PDQ = mediahash.hash_media(encoded(photo(1).resize((200, 150)), "JPEG", quality=60), "image/jpeg", seconds=5).pdq


def _flip(pdq: str, n: int) -> str:
    """`pdq` with its n lowest bits flipped: exactly distance n."""
    return f"{int(pdq, 16) ^ ((1 << n) - 1):064x}"


def test_a_near_copy_of_banked_media_is_matched_recorded_tagged_and_prioritised(
    import_list: Callable[..., HashBank], report_media: Callable[..., Case]
) -> None:
    import_list(f"hash_type,hash_value,label,source,date\npdq,{COPY_PDQ},IS execution video,TCAP,2026-11-02\n")
    case = report_media((PNG, "image/png", "screenshot.png"))
    match = KnownContentMatch.objects.get()
    attachment = Attachment.objects.get()
    distance = (int(PNG_PDQ, 16) ^ int(COPY_PDQ, 16)).bit_count()
    assert (match.attachment, match.kind, match.distance) == (attachment, "pdq", distance)
    assert (match.bank_name, match.label, match.banked_hash.value) == ("tcap", "IS execution video", COPY_PDQ)
    case.refresh_from_db()
    assert case.priority == Case.Priority.HIGH
    matched, raised = AuditEntry.objects.filter(case=case).order_by("id")
    assert (matched.action, matched.actor, matched.actor_label, matched.report) == (
        AuditAction.KNOWN_CONTENT_MATCHED, None, "system", attachment.report,
    )  # fmt: skip
    assert matched.data == {
        "old": None,
        "new": [
            {
                "attachment": str(attachment.public_id),
                "filename": "screenshot.png",
                "bank": "tcap",
                "label": "IS execution video",
                "kind": "pdq",
                "hash": COPY_PDQ,
                "distance": distance,
            }
        ],
        "automated_detection": True,
    }
    assert (raised.action, raised.actor_label, raised.data) == (
        AuditAction.CASE_PRIORITY_CHANGED, "system", {"old": Case.Priority.NORMAL, "new": Case.Priority.HIGH},
    )  # fmt: skip
    assert tags_by_case([case.pk]) == {case.pk: ["tcap: IS execution video"]}
    # Nothing is blocked automatically: a moderator decides.
    assert case.status == Case.Status.NEW
    assert not case.entities.filter(status=Entity.Status.BLOCKED).exists()


def test_pdq_distance_31_matches_and_32_does_not(
    import_list: Callable[..., HashBank], report_media: Callable[..., Case]
) -> None:
    import_list(f"pdq,label\n{_flip(PNG_PDQ, 31)},at 31\n{_flip(PNG_PDQ, 32)},at 32\n")
    report_media((PNG, "image/png", "a.png"))
    assert list(KnownContentMatch.objects.values_list("label", "distance")) == [("at 31", 31)]


def test_md5_and_sha256_match_exactly(import_list: Callable[..., HashBank], report_media: Callable[..., Case]) -> None:
    pdf = b"%PDF-1.4 a manifesto"
    import_list(
        f"md5,sha256,label\n{hashlib.md5(pdf).hexdigest()},,manifesto\n,{hashlib.sha256(PNG).hexdigest()},poster\n"
    )
    report_media((pdf, "application/pdf", "m.pdf"), (PNG, "image/png", "p.png"))
    assert sorted(KnownContentMatch.objects.values_list("attachment__filename", "kind", "label", "distance")) == [
        ("m.pdf", "md5", "manifesto", 0),
        ("p.png", "sha256", "poster", 0),
    ]


def test_an_attachment_of_quality_below_50_never_matches_by_pdq(
    import_list: Callable[..., HashBank], report_media: Callable[..., Case]
) -> None:
    import_list(f"pdq\n{PNG_PDQ}\n")
    case = report_media((encoded(photo(9)), "image/png", "other.png"))
    Attachment.objects.update(pdq=PNG_PDQ, pdq_quality=49)
    assert matching.match_report(case.reports.get().pk) == 0
    Attachment.objects.update(pdq_quality=50)
    assert matching.match_report(case.reports.get().pk) == 1


def test_a_banked_hash_listed_below_quality_50_never_matches(
    import_list: Callable[..., HashBank], report_media: Callable[..., Case]
) -> None:
    import_list(f"pdq,quality\n{PNG_PDQ},49\n")
    report_media((PNG, "image/png", "a.png"))
    assert not KnownContentMatch.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.KNOWN_CONTENT_MATCHED).exists()


def test_the_next_match_sees_a_bank_changed_after_the_index_was_built(
    import_list: Callable[..., HashBank], report_media: Callable[..., Case]
) -> None:
    import_list(f"pdq,label\n{_flip(PNG_PDQ, 200)},unrelated\n")
    case = report_media((PNG, "image/png", "a.png"))  # builds this process's index
    assert not KnownContentMatch.objects.exists()
    import_list(f"pdq,label\n{_flip(PNG_PDQ, 3)},now banked\n")
    assert matching.match_report(case.reports.get().pk) == 1
    assert KnownContentMatch.objects.get().label == "now banked"


def test_an_inactive_bank_is_not_matched(
    import_list: Callable[..., HashBank], report_media: Callable[..., Case]
) -> None:
    bank = import_list(f"pdq\n{PNG_PDQ}\n")
    HashBank.objects.filter(pk=bank.pk).update(active=False)
    report_media((PNG, "image/png", "a.png"))
    assert not KnownContentMatch.objects.exists()


def test_matching_again_records_nothing_new(
    import_list: Callable[..., HashBank], report_media: Callable[..., Case]
) -> None:
    import_list(f"pdq\n{PNG_PDQ}\n")
    case = report_media((PNG, "image/png", "a.png"))
    entries = AuditEntry.objects.count()
    assert matching.match_report(case.reports.get().pk) == 0
    assert AuditEntry.objects.count() == entries


def test_an_urgent_case_keeps_its_priority(
    import_list: Callable[..., HashBank], report_media: Callable[..., Case]
) -> None:
    case = report_media((PNG, "image/png", "a.png"))
    Case.objects.filter(pk=case.pk).update(priority=Case.Priority.URGENT)
    import_list(f"pdq\n{PNG_PDQ}\n")
    assert matching.match_report(case.reports.get().pk) == 1
    case.refresh_from_db()
    assert case.priority == Case.Priority.URGENT
    assert list(AuditEntry.objects.filter(case=case).values_list("action", flat=True)) == [
        AuditAction.KNOWN_CONTENT_MATCHED
    ]


def test_recording_no_match_records_nothing(report_media: Callable[..., Case]) -> None:
    case = report_media((PNG, "image/png", "a.png"))
    assert do_record_known_content_matches(case.reports.get(), []) == []
    assert not AuditEntry.objects.exists()


def test_importing_a_bank_rematches_open_cases_but_not_closed_ones(
    import_list: Callable[..., HashBank],
    report_media: Callable[..., Case],
    django_capture_on_commit_callbacks: Callable[..., object],
) -> None:
    open_case = report_media((PNG, "image/png", "a.png"), message_id="<open@example.org>")
    closed = report_media(
        (PNG, "image/png", "b.png"), message_id="<closed@example.org>", body="Look at t.me/another_channel_x"
    )
    Case.objects.filter(pk=closed.pk).update(status=Case.Status.DECLINED)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[attr-defined]
        import_list(f"sha256,label\n{hashlib.sha256(PNG).hexdigest()},poster\n")
    assert list(KnownContentMatch.objects.values_list("attachment__report__case", flat=True)) == [open_case.pk]


def test_attachments_hashed_after_they_were_stored_are_matched(
    import_list: Callable[..., HashBank],
    report_media: Callable[..., Case],
    django_capture_on_commit_callbacks: Callable[..., object],
) -> None:
    case = report_media((PNG, "image/png", "a.png"))
    Attachment.objects.update(md5="", pdq="", pdq_quality=None, pdq_state=Attachment.PdqState.PENDING)
    import_list(f"pdq\n{_flip(PNG_PDQ, 5)}\n")
    assert not KnownContentMatch.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[attr-defined]
        call_command("hash_attachments", stdout=io.StringIO())
    assert KnownContentMatch.objects.get().distance == 5
    assert case.reports.get().attachments.get().pdq == PNG_PDQ
