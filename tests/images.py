"""Images built in code for the hashing tests: smooth, photo-like pictures PDQ hashes with quality."""

from __future__ import annotations

import io
from email.message import EmailMessage

import numpy as np
from PIL import Image


def photo(seed: int, size: tuple[int, int] = (400, 300)) -> Image.Image:
    """A smooth picture of random colour fields: PDQ quality 100, unrelated for another seed."""
    rng = np.random.default_rng(seed)
    small = (rng.random((12, 16, 3)) * 255).astype("uint8")
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def mail_with_files(
    *files: tuple[bytes, str, str],
    body: str = "Please block t.me/known_media_channel, it posts this propaganda.",
    message_id: str = "<media-1@example.org>",
    sender: str = "Reporter <reporter@example.org>",
) -> bytes:
    """A report with attachments given as (bytes, "maintype/subtype", filename)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "abuse@abusedesk.localhost"
    mail["Subject"] = "Abuse report with media"
    mail["Message-ID"] = message_id
    mail.set_content(body)
    for content, ctype, filename in files:
        maintype, subtype = ctype.split("/")
        mail.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()
