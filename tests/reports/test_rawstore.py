"""Blob storage: content-addressed, durable, and never half-written under its final name."""

from __future__ import annotations

import hashlib
import os

import pytest
from django.core.files.storage import default_storage

from reports import rawstore
from reports.models import InboundMessage
from tests.mail import build_mail


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_blob_lands_under_its_hash_once_with_nothing_left_over(settings):
    data = b"From: a@example.org\n\nhello\n"
    name = rawstore.store_blob("inbound", _digest(data), data, ".eml")
    assert name == f"inbound/{_digest(data)[:2]}/{_digest(data)[2:4]}/{_digest(data)}.eml"
    assert rawstore.store_blob("inbound", _digest(data), data, ".eml") == name
    assert rawstore.read_blob(name) == data
    folder = os.path.dirname(default_storage.path(name))
    assert os.listdir(folder) == [os.path.basename(name)]


def test_blobs_are_synced_to_disk_before_the_row_that_names_them(monkeypatch):
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(rawstore.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    rawstore.store_blob("attachments", _digest(b"x"), b"x")
    assert len(synced) == 2  # the file, then its directory entry


def test_a_failed_write_leaves_no_file_under_the_final_name(monkeypatch):
    def disk_error(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(rawstore.os, "fsync", disk_error)
    with pytest.raises(OSError, match="I/O error"):
        rawstore.store_blob("inbound", _digest(b"y"), b"y", ".eml")
    monkeypatch.undo()
    name = f"inbound/{_digest(b'y')[:2]}/{_digest(b'y')[2:4]}/{_digest(b'y')}.eml"
    assert not default_storage.exists(name)
    assert os.listdir(os.path.dirname(default_storage.path(name))) == []
    # And the next delivery stores it properly.
    assert rawstore.read_blob(rawstore.store_blob("inbound", _digest(b"y"), b"y", ".eml")) == b"y"


def test_file_and_directory_modes_follow_the_storage_settings(settings):
    settings.FILE_UPLOAD_PERMISSIONS = 0o640
    settings.FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
    name = rawstore.store_blob("inbound", _digest(b"z"), b"z")
    path = default_storage.path(name)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o750


def test_a_stored_field_reads_its_bytes_and_an_empty_one_is_an_error(ingest) -> None:
    raw = build_mail()
    message = ingest(raw)
    assert rawstore.read_stored(message.raw) == raw
    assert rawstore.read_stored(message.raw, 4) == raw[:4]
    with pytest.raises(FileNotFoundError, match="has no stored raw"):
        rawstore.read_stored(InboundMessage().raw)
