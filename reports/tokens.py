"""Signed case tokens: the only sender-visible identifiers intake trusts for threading.

A token is `AD-000123-<signature>`, the signature an HMAC of the case reference under SECRET_KEY.
It travels in our Reply-To (`abuse+TOKEN@domain`) and in the Subject of our replies (`[TOKEN]`).
A reference without a valid signature is just text (SECURITY rule 3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from django.conf import settings

_SALT = b"abusedesk.case-token.v1"
_TOKEN_RE = re.compile(r"\b(AD-\d{6,12})-([a-z2-7]{16})\b", re.IGNORECASE)


def _signature(reference: str) -> str:
    key = hashlib.sha256(_SALT + settings.SECRET_KEY.encode()).digest()
    digest = hmac.new(key, reference.upper().encode(), hashlib.sha256).digest()
    # Lower-case base32: survives case-folding MTAs and is valid in an address local part.
    return base64.b32encode(digest[:10]).decode().lower()


def make_case_token(reference: str) -> str:
    return f"{reference}-{_signature(reference)}"


def reply_to_address(reference: str) -> str:
    local, _, domain = settings.ABUSEDESK_ADDRESS.partition("@")
    return f"{local}+{make_case_token(reference)}@{domain}"


def find_tokens(*texts: str) -> tuple[list[str], list[str]]:
    """Case references whose tokens verify, and those found with a bad signature, in order seen."""
    valid: list[str] = []
    invalid: list[str] = []
    for text in texts:
        for match in _TOKEN_RE.finditer(text[:10_000]):
            reference = match.group(1).upper()
            good = hmac.compare_digest(match.group(2).lower(), _signature(reference))
            target = valid if good else invalid
            if reference not in target:
                target.append(reference)
    return valid, invalid
