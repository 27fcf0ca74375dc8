"""Is a report's From address authenticated? (SECURITY rule 4 and T4.)

Anyone can write any From address, so the desk believes one only when a receiver it trusts says
DMARC passed for it: the topmost Authentication-Results field (RFC 8601), written by the MTA or
provider that received the mail for us, names that receiver in its authserv-id. DMARC pass means
SPF or DKIM passed for a domain aligned with the From domain.

Which receivers to trust is configuration (ABUSEDESK_AUTHSERV_IDS), per intake path where it
matters: a provider's verdict is worth nothing on a path the provider does not sit in front of,
where the sender could have written that field themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.conf import settings


def _trusted_receivers(entries: Iterable[str]) -> list[tuple[str, str]]:
    """("source prefix", "authserv-id") pairs from entries like "mx.desk.example" (any intake
    path) or "webhook:amazon_ses=amazonses.com" (only mail whose source starts with that)."""
    pairs = []
    for entry in entries:
        prefix, _, authserv = entry.rpartition("=")
        if authserv.strip():
            pairs.append((prefix.strip(), authserv.strip().lower()))
    return pairs


def authserv_id(auth_results: Mapping[str, str]) -> str:
    # "mx.example.org 1": an optional version may follow the id.
    words = auth_results.get("authserv-id", "").split()
    return words[0].lower() if words else ""


def from_verified(source: str, auth_results: Mapping[str, str]) -> bool:
    """True when a trusted receiver for this intake path reported dmarc=pass."""
    receiver = authserv_id(auth_results)
    if not receiver or auth_results.get("dmarc") != "pass":
        return False
    return any(
        receiver == trusted and source.startswith(prefix)
        for prefix, trusted in _trusted_receivers(settings.ABUSEDESK_AUTHSERV_IDS)
    )
