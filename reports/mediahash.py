"""Hashes of attachments for known-content matching: MD5 for every file, PDQ for raster images.

PDQ (Meta's perceptual image hash, the one TCAP and GIFCT share) is 256 bits written as 64 hex
digits, with a quality from 0 to 100; moderation matches it by Hamming distance. Decoding an
image is the costly, hostile-input part, so it is bounded like the thumbnails (a pixel cap) and by
a wall-clock budget per message, and runs in the worker that processes the mail. Whatever is not
perceptually hashed says why in `pdq_state` and `pdq_note`: there is never a silent gap.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from reports.models import Attachment
from reports.rawstore import read_blob
from reports.timebox import ProcessingTimeout, time_limit

logger = logging.getLogger(__name__)

State = Attachment.PdqState

# Raster formats Pillow decodes. SVG is a program, not pixels: never rasterised here.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"})
# The thumbnails' cap (moderation.views.case.THUMBNAIL_MAX_PIXELS): 25 MP is about 75 MB decoded.
MAX_PIXELS = 25_000_000
# Meta's reference hashers shrink an image to at most 512 x 512 before PDQ's own 64 x 64 filter:
# the hash barely moves, and the work no longer grows with the photo.
WORKING_SIZE = (512, 512)
VIDEO_NOTE = (
    "video: no perceptual hash (vPDQ needs FFmpeg's development libraries to build, TMK has no "
    "maintained Python package); matched by MD5 and SHA-256 only, as Meta's HMA matches video"
)


@dataclass(frozen=True, slots=True)
class MediaHashes:
    """What hashing made of one file; `pdq` is "" unless `pdq_state` is hashed."""

    md5: str
    pdq_state: str
    pdq: str = ""
    pdq_quality: int | None = None
    pdq_note: str = ""


def pdq_hex(bits: Sequence[int]) -> str:
    """The reference text form: bit 255 first, as pdqhash's vector orders them, 64 hex digits."""
    value = 0
    for bit in bits:
        value = (value << 1) | (1 if bit else 0)
    return f"{value:064x}"


def _pdq_of_image(content: bytes) -> tuple[str, str, int | None, str]:
    """(state, pdq hex, quality, note) of one image's bytes."""
    import numpy
    import pdqhash
    from PIL import Image

    try:
        with Image.open(io.BytesIO(content)) as image:
            # JPEG decodes at 1/2 to 1/8 scale when that is still larger than the working size.
            image.draft("RGB", WORKING_SIZE)
            pixels = image.width * image.height
            if pixels > MAX_PIXELS:
                return (
                    State.OVERSIZED,
                    "",
                    None,
                    f"{image.width} x {image.height} pixels, over the cap of {MAX_PIXELS:,}",
                )
            image.thumbnail(WORKING_SIZE)
            rgb = numpy.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as exc:
        return State.OVERSIZED, "", None, str(exc)[:300]
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        return State.UNDECODABLE, "", None, f"{type(exc).__name__}: {exc}"[:300]
    bits, quality = pdqhash.compute(rgb)
    return State.HASHED, pdq_hex(bits), int(quality), ""


def hash_media(content: bytes, content_type: str, *, seconds: float) -> MediaHashes:
    """MD5 of any file and, for a raster image, its PDQ hash, within `seconds` of wall-clock time."""
    md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
    if content_type.startswith("video/"):
        return MediaHashes(md5, State.VIDEO, pdq_note=VIDEO_NOTE)
    if content_type not in IMAGE_TYPES:
        return MediaHashes(md5, State.NOT_IMAGE, pdq_note=f"not a raster image ({content_type[:100]})")
    if seconds <= 0:
        return MediaHashes(md5, State.TOO_SLOW, pdq_note="the message's hashing time budget was spent")
    try:
        with time_limit(seconds):
            state, pdq, quality, note = _pdq_of_image(content)
    except ProcessingTimeout:
        return MediaHashes(md5, State.TOO_SLOW, pdq_note=f"decoding took longer than {seconds:.2g} s")
    return MediaHashes(md5, state, pdq, quality, note)


def hash_message_media(files: Iterable[tuple[bytes, str]]) -> list[MediaHashes]:
    """Hash a message's attachments (bytes, sniffed type) within ABUSEDESK_MEDIA_HASH_SECONDS in all,
    so a mail of five hundred images cannot hold up the worker for five hundred budgets."""
    deadline = time.monotonic() + settings.ABUSEDESK_MEDIA_HASH_SECONDS
    return [hash_media(content, ctype, seconds=deadline - time.monotonic()) for content, ctype in files]


def pending_attachments() -> list[int]:
    """Ids of attachments stored before hashing existed (or whose hashing never ran), oldest first."""
    return list(Attachment.objects.filter(pdq_state=State.PENDING).order_by("pk").values_list("pk", flat=True))


@transaction.atomic
def do_hash_attachment(attachment_id: int) -> Attachment:
    """Hash one stored attachment from its file, once: an attachment already hashed is left as is."""
    attachment = Attachment.objects.select_for_update().get(pk=attachment_id)
    if attachment.pdq_state != State.PENDING:
        return attachment
    try:
        content = read_blob(attachment.file.name or "")
    except OSError as exc:
        media = MediaHashes("", State.UNDECODABLE, pdq_note=f"file unreadable: {exc}"[:300])
    else:
        media = hash_media(content, attachment.content_type, seconds=settings.ABUSEDESK_MEDIA_HASH_SECONDS)
    apply_hashes(attachment, media)
    attachment.save(update_fields=["md5", "pdq", "pdq_quality", "pdq_state", "pdq_note"])
    return attachment


def apply_hashes(attachment: Attachment, media: MediaHashes) -> None:
    attachment.md5 = media.md5
    attachment.pdq = media.pdq
    attachment.pdq_quality = media.pdq_quality
    attachment.pdq_state = media.pdq_state
    attachment.pdq_note = media.pdq_note[:300]
