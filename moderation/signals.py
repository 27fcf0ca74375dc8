"""Signals of moderation, for enforcement and other listeners."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent after commit for every block or unblock. Args: change (moderation.BlocklistChange).
blocklist_changed = Signal()
