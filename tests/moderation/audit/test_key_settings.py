"""The audit key comes from the environment: required in production, `<key id>:<secret>`, with the
retired keys listed for verification."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = {
    "ABUSEDESK_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "ALLOWED_HOSTS": "desk.example",
    "ANYMAIL_WEBHOOK_SECRET": "desk:" + "w" * 32,
}
SHOW = "from abusedesk import settings as s; print(s.ABUSEDESK_AUDIT_KEY_ID, sorted(s.ABUSEDESK_AUDIT_KEYS))"


def _settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEDESK_") and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_production_refuses_to_start_without_an_audit_key():
    result = _settings(**PRODUCTION)
    assert result.returncode == 1
    assert "ABUSEDESK_AUDIT_KEY must be set in production (<key id>:<secret>)" in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no-key-id-" + "x" * 32, "ABUSEDESK_AUDIT_KEY must be <key id>:<secret>"),
        ("bad id:" + "x" * 32, "ABUSEDESK_AUDIT_KEY must be <key id>:<secret>"),
        ("2026-12:short", "ABUSEDESK_AUDIT_KEY: the secret must be at least 32 characters in production"),
    ],
)
def test_a_malformed_audit_key_is_refused_by_name(value, message):
    result = _settings(**PRODUCTION, ABUSEDESK_AUDIT_KEY=value)
    assert result.returncode == 1
    assert message in result.stderr


def test_the_current_key_writes_and_the_retired_keys_verify():
    result = _settings(
        **PRODUCTION,
        ABUSEDESK_AUDIT_KEY="2026-12:" + "n" * 32,
        ABUSEDESK_AUDIT_RETIRED_KEYS="2026-01:" + "a" * 32 + ", 2026-06:" + "b" * 32,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2026-12 ['2026-01', '2026-06', '2026-12']"


def test_development_has_a_key_of_its_own():
    result = _settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "dev ['dev']"


def test_an_https_anchor_place_needs_the_signing_secret():
    result = _settings(ABUSEDESK_AUDIT_ANCHORS="https://anchors.example/desk")
    assert result.returncode == 1
    assert "ABUSEDESK_AUDIT_ANCHOR_SECRET must be set" in result.stderr
