"""Signals of intake, so other apps can react without reports importing them."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent once a new Report is committed (send it from transaction.on_commit). Args: report.
report_created = Signal()

#: Sent after commit when attachments stored before hashing existed got their hashes
#: (`manage.py hash_attachments`). Args: attachment_ids (list of int).
attachments_hashed = Signal()
