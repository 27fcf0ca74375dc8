"""Hashes at intake: every attachment gets MD5, raster images PDQ with its quality, and whatever
is not perceptually hashed records why."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pdqhash
import pytest
from django.core.management import call_command
from django.test import override_settings
from PIL import Image

from reports import mediahash
from reports.models import Attachment, InboundMessage
from tests.images import encoded, mail_with_files, photo

State = Attachment.PdqState
# The first bytes of an MP4 file: enough for the content sniffer to call it video.
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64)


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def test_an_image_attachment_gets_md5_pdq_and_its_quality(ingest: Callable[..., InboundMessage]) -> None:
    png = encoded(photo(1))
    ingest(mail_with_files((png, "image/png", "screenshot.png")))
    attachment = Attachment.objects.get()
    assert attachment.md5 == hashlib.md5(png).hexdigest()
    assert attachment.sha256 == hashlib.sha256(png).hexdigest()
    assert (attachment.pdq_state, attachment.pdq_quality, attachment.pdq_note) == (State.HASHED, 100, "")
    assert len(attachment.pdq) == 64 and int(attachment.pdq, 16) > 0


def test_the_pdq_hash_survives_resizing_and_jpeg_recompression_but_not_another_picture() -> None:
    original = mediahash.hash_media(encoded(photo(1)), "image/png", seconds=5)
    copy = mediahash.hash_media(encoded(photo(1).resize((200, 150)), "JPEG", quality=60), "image/jpeg", seconds=5)
    other = mediahash.hash_media(encoded(photo(2)), "image/png", seconds=5)
    assert _distance(original.pdq, copy.pdq) <= 31
    assert _distance(original.pdq, other.pdq) > 31


def test_pdq_is_written_in_the_reference_order_bit_255_first() -> None:
    assert mediahash.pdq_hex([1] + [0] * 255) == "8" + "0" * 63
    assert mediahash.pdq_hex([0] * 255 + [1]) == "0" * 63 + "1"
    bits, _quality = pdqhash.compute(np.asarray(photo(3)))
    assert mediahash.pdq_hex(bits) == f"{int(''.join(str(b) for b in bits), 2):064x}"


def test_a_flat_image_is_hashed_with_its_low_quality_recorded() -> None:
    media = mediahash.hash_media(encoded(Image.new("RGB", (100, 100), "grey")), "image/png", seconds=5)
    assert (media.pdq_state, media.pdq_quality) == (State.HASHED, 0)


@pytest.mark.parametrize(
    ("content", "ctype", "state", "note"),
    [
        (b"%PDF-1.4 a document", "application/pdf", State.NOT_IMAGE, "not a raster image (application/pdf)"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml", State.NOT_IMAGE, "not a raster image"),
        (MP4, "video/mp4", State.VIDEO, "video: no perceptual hash"),
        (b"\x89PNG\r\n\x1a\n" + b"broken" * 20, "image/png", State.UNDECODABLE, ""),
    ],
)
def test_files_without_a_pdq_hash_say_why(content: bytes, ctype: str, state: str, note: str) -> None:
    media = mediahash.hash_media(content, ctype, seconds=5)
    assert media.md5 == hashlib.md5(content).hexdigest()
    assert (media.pdq_state, media.pdq, media.pdq_quality) == (state, "", None)
    assert media.pdq_note.startswith(note) and media.pdq_note


def test_an_image_over_the_pixel_cap_is_not_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mediahash, "MAX_PIXELS", 400 * 300 - 1)
    media = mediahash.hash_media(encoded(photo(1)), "image/png", seconds=5)
    assert (media.pdq_state, media.pdq) == (State.OVERSIZED, "")
    assert media.pdq_note == "400 x 300 pixels, over the cap of 119,999"


def test_a_spent_time_budget_leaves_the_remaining_images_unhashed_with_the_reason() -> None:
    with override_settings(ABUSEDESK_MEDIA_HASH_SECONDS=0):
        hashes = mediahash.hash_message_media([(encoded(photo(1)), "image/png"), (b"text", "text/plain")])
    assert [h.pdq_state for h in hashes] == [State.TOO_SLOW, State.NOT_IMAGE]
    assert hashes[0].pdq_note == "the message's hashing time budget was spent"
    assert hashes[0].md5 == hashlib.md5(encoded(photo(1))).hexdigest()


def test_decoding_past_its_budget_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(content: bytes) -> tuple[str, str, int | None, str]:
        import time

        time.sleep(2)
        raise AssertionError("the budget should have stopped this")

    monkeypatch.setattr(mediahash, "_pdq_of_image", slow)
    media = mediahash.hash_media(encoded(photo(1)), "image/png", seconds=0.2)
    assert (media.pdq_state, media.pdq_note) == (State.TOO_SLOW, "decoding took longer than 0.2 s")


def test_every_attachment_of_a_mail_records_its_state(ingest: Callable[..., InboundMessage]) -> None:
    ingest(
        mail_with_files(
            (encoded(photo(1)), "image/png", "a.png"),
            (MP4, "video/mp4", "clip.mp4"),
            (b"just some text", "text/plain", "notes.txt"),
        )
    )
    states = dict(Attachment.objects.values_list("filename", "pdq_state"))
    assert states == {"a.png": State.HASHED, "clip.mp4": State.VIDEO, "notes.txt": State.NOT_IMAGE}
    assert not Attachment.objects.filter(md5="").exists()


def test_hash_attachments_hashes_what_was_stored_before_hashing_existed(
    ingest: Callable[..., InboundMessage], capsys: pytest.CaptureFixture[str]
) -> None:
    png = encoded(photo(1))
    ingest(mail_with_files((png, "image/png", "a.png"), (b"text", "text/plain", "b.txt")))
    # As the migration leaves attachments stored before this change.
    Attachment.objects.update(md5="", pdq="", pdq_quality=None, pdq_state=State.PENDING, pdq_note="")
    call_command("hash_attachments")
    assert "hashed 2 attachment(s): hashed 1, not_image 1" in capsys.readouterr().out
    image = Attachment.objects.get(filename="a.png")
    assert (image.md5, image.pdq_state, image.pdq_quality) == (hashlib.md5(png).hexdigest(), State.HASHED, 100)
    call_command("hash_attachments")
    assert "hashed 0 attachment(s): nothing pending" in capsys.readouterr().out


def test_a_decompression_bomb_is_recorded_as_oversized(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow refuses images over twice its MAX_IMAGE_PIXELS before decoding anything.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    media = mediahash.hash_media(encoded(photo(1)), "image/png", seconds=5)
    assert (media.pdq_state, media.pdq) == (State.OVERSIZED, "")
    assert "decompression bomb" in media.pdq_note
