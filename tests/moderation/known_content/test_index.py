"""The PDQ index finds exactly the hashes within distance 31, as a full scan would."""

from __future__ import annotations

import numpy as np
import pytest

from moderation.known_content.index import PdqIndex


def _flip(hash_bytes: np.ndarray, bits: np.ndarray) -> str:
    unpacked = np.unpackbits(hash_bytes)
    unpacked[bits] ^= 1
    return np.packbits(unpacked).tobytes().hex()


@pytest.fixture(scope="module")
def hashes() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (5000, 32), dtype=np.uint8)


@pytest.fixture(scope="module")
def index(hashes: np.ndarray) -> PdqIndex:
    return PdqIndex(np.arange(100, 100 + len(hashes)), hashes)


def test_distance_31_matches_and_32_does_not(index: PdqIndex, hashes: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    for row in rng.choice(len(hashes), 20, replace=False):
        bits = rng.choice(256, 32, replace=False)
        assert index.search(_flip(hashes[row], bits[:31])) == [(100 + int(row), 31)]
        assert index.search(_flip(hashes[row], bits)) == []


def test_an_identical_hash_is_found_at_distance_0(index: PdqIndex, hashes: np.ndarray) -> None:
    assert index.search(hashes[42].tobytes().hex()) == [(142, 0)]


def test_the_index_agrees_with_a_full_scan_and_orders_nearest_first() -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, 32, dtype=np.uint8)
    # A cluster of near-duplicates around one hash, among random ones.
    near = [np.frombuffer(bytes.fromhex(_flip(base, rng.choice(256, k, replace=False))), np.uint8) for k in range(40)]
    hashes = np.vstack([rng.integers(0, 256, (2000, 32), dtype=np.uint8), np.array(near)])
    index = PdqIndex(np.arange(len(hashes)), hashes)
    query = base.tobytes().hex()
    scan = sorted((int(d), i) for i, d in enumerate(np.unpackbits(hashes ^ base, axis=1).sum(axis=1)) if d <= 31)
    assert index.search(query) == [(i, d) for d, i in scan]
    assert [d for _, d in index.search(query)] == list(range(32))


def test_an_empty_index_finds_nothing_and_a_radius_over_31_is_refused() -> None:
    empty = PdqIndex(np.array([], dtype=np.int64), np.zeros((0, 32), dtype=np.uint8))
    assert empty.search("0" * 64) == []
    with pytest.raises(ValueError, match="up to 31"):
        empty.search("0" * 64, radius=32)
