"""Matching attachments against the hash banks: exact MD5 or SHA-256, or PDQ within distance 31
when the attachment's PDQ quality is 50 or more.

A new report is matched by a django-q2 task queued from the `report_created` receiver
(receivers.py), so the work happens in a worker, never in the web request or the intake process
that created the report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.db.models import Q

from moderation.known_content import MATCH_DISTANCE, MIN_QUALITY
from moderation.known_content.actions import Found, do_record_known_content_matches
from moderation.known_content.index import PdqIndex, build_index, current_index
from moderation.models import BankedHash, HashBank, HashKind
from reports.models import Attachment, Case, Report

_FIELDS = ("pk", "report_id", "md5", "sha256", "pdq", "pdq_quality")
_CHUNK = 500


def find_matches(
    attachments: Sequence[Attachment], *, bank: HashBank | None = None, index: PdqIndex | None = None
) -> list[Found]:
    """What these attachments match in one bank, or in every active bank. `index`: that bank's PDQ
    index, when a scan over many attachments builds it once."""
    banked = BankedHash.objects.filter(bank=bank) if bank is not None else BankedHash.objects.filter(bank__active=True)
    by_md5: defaultdict[str, list[int]] = defaultdict(list)
    by_sha: defaultdict[str, list[int]] = defaultdict(list)
    for attachment in attachments:
        if attachment.md5:
            by_md5[attachment.md5].append(attachment.pk)
        by_sha[attachment.sha256].append(attachment.pk)
    found: list[Found] = []
    exact = banked.filter(
        Q(kind=HashKind.MD5, value__in=list(by_md5)) | Q(kind=HashKind.SHA256, value__in=list(by_sha))
    ).values_list("pk", "kind", "value")
    for banked_id, kind, value in exact:
        for attachment_id in (by_md5 if kind == HashKind.MD5 else by_sha)[value]:
            found.append(Found(attachment_id, banked_id, kind))
    perceptual = [a for a in attachments if a.pdq and (a.pdq_quality or 0) >= MIN_QUALITY]
    if perceptual:
        if index is None:
            index = build_index(bank=bank) if bank is not None else current_index()
        for attachment in perceptual:
            for banked_id, distance in index.search(attachment.pdq, MATCH_DISTANCE):
                found.append(Found(attachment.pk, banked_id, HashKind.PDQ, distance))
    return found


def _record(attachments: Iterable[Attachment], found: list[Found]) -> int:
    """Record matches report by report (one audit entry each); the number of new matches."""
    report_of = {a.pk: a.report_id for a in attachments}
    by_report: defaultdict[int, list[Found]] = defaultdict(list)
    for f in found:
        by_report[report_of[f.attachment_id]].append(f)
    new = 0
    for report in Report.objects.filter(pk__in=by_report).order_by("pk"):
        new += len(do_record_known_content_matches(report, by_report[report.pk]))
    return new


def match_report(report_id: int) -> int:
    """Match one report's attachments against every active bank; the number of new matches."""
    attachments = list(Attachment.objects.filter(report_id=report_id).only(*_FIELDS))
    return _record(attachments, find_matches(attachments)) if attachments else 0


def match_attachments(attachment_ids: Sequence[int]) -> int:
    """Match given attachments (hashed after they were stored) against every active bank."""
    attachments = list(Attachment.objects.filter(pk__in=attachment_ids, report__case__isnull=False).only(*_FIELDS))
    return _record(attachments, find_matches(attachments)) if attachments else 0


def rematch_open_cases(bank_id: int) -> int:
    """Match the attachments of every open case against one bank, after its hashes changed."""
    bank = HashBank.objects.get(pk=bank_id)
    if not bank.active:
        return 0
    candidates = Attachment.objects.filter(report__case__status__in=Case.OPEN_STATUSES).only(*_FIELDS).order_by("pk")
    new, after = 0, 0
    index = build_index(bank=bank)
    while chunk := list(candidates.filter(pk__gt=after)[:_CHUNK]):
        after = chunk[-1].pk
        found = find_matches(chunk, bank=bank, index=index)
        new += _record(chunk, found) if found else 0
    return new
