"""The outbound HTTP client every integration shares: the SSRF guard and the retry back-off."""

from __future__ import annotations

import pytest

from moderation.integrations import outbound


def test_retry_delays_double_from_30_seconds_up_to_an_hour_with_jitter() -> None:
    for attempts, ceiling in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (40, 3600)]:
        for _ in range(20):
            delay = outbound.retry_delay(attempts).total_seconds()
            assert 0.75 * ceiling <= delay <= ceiling


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
    ],
)
def test_only_public_addresses_count_as_public(address: str, public: bool) -> None:
    assert outbound.is_public(address) is public
