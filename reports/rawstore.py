"""Content-addressed storage of raw mail and attachments through Django's storage API."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def store_blob(prefix: str, sha256: str, data: bytes, suffix: str = "") -> str:
    """Write the bytes under a name derived from their hash; rewriting the same bytes is a no-op."""
    name = f"{prefix}/{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix}"
    if not default_storage.exists(name):
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:
            # A concurrent writer won the race with identical bytes; keep theirs.
            default_storage.delete(saved)
    return name


def read_blob(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()
