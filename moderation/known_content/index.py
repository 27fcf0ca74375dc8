"""Finding PDQ hashes within a Hamming distance, fast: multi-index hashing over 16-bit chunks.

A 256-bit hash is cut into 16 chunks of 16 bits. Two hashes within distance 31 differ in at most
31 bits, so at least one of their 16 chunks differs in at most one bit (16 chunks with two or more
would be 32). For each chunk position the index keeps the hashes' row numbers sorted by that
chunk's value, with an offset table over all 65,536 values; a query looks up its own chunk value
and the 16 values one bit away in each of the 16 tables (272 slices), and only those candidates
get a full distance, computed with numpy's popcount. Against 1,000,000 random hashes that is
about 4,000 candidates instead of a million (bench/known_content.py has the figures).

The index lives in each worker process and is rebuilt when any bank changes (banks carry a
revision that every change bumps); the exact hashes (MD5, SHA-256) need no index: the database
looks them up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from moderation.known_content import MATCH_DISTANCE, MIN_QUALITY
from moderation.models import BankedHash, HashBank, HashKind

_CHUNKS = 16
_VALUES = 1 << 16
# The chunk value itself and each value one bit away from it.
_NEIGHBOURS = np.array([0] + [1 << bit for bit in range(16)], dtype=np.int64)


class PdqIndex:
    """An immutable set of PDQ hashes (each with an id) to search by Hamming distance."""

    def __init__(self, ids: np.ndarray, hashes: np.ndarray) -> None:
        """`ids`: int64 of shape (n,); `hashes`: uint8 of shape (n, 32), each row big-endian."""
        self.ids = np.ascontiguousarray(ids, dtype=np.int64)
        hashes = np.ascontiguousarray(hashes, dtype=np.uint8).reshape(-1, 32)
        self.words = hashes.view(">u8").astype(np.uint64)  # (n, 4), for the distance
        chunks = hashes.view(">u2").astype(np.uint16)  # (n, 16); a stable sort of 16 bits is a radix sort
        self.order: list[np.ndarray] = []
        self.offsets: list[np.ndarray] = []
        for k in range(_CHUNKS):
            column = np.ascontiguousarray(chunks[:, k])
            self.order.append(np.argsort(column, kind="stable").astype(np.int32))
            counts = np.bincount(column, minlength=_VALUES)
            self.offsets.append(np.concatenate(([0], np.cumsum(counts))).astype(np.int32))

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_hex(cls, rows: Iterable[tuple[int, str]]) -> PdqIndex:
        ids: list[int] = []
        digits: list[str] = []
        for row_id, value in rows:
            ids.append(row_id)
            digits.append(value)
        hashes = np.frombuffer(bytes.fromhex("".join(digits)), dtype=np.uint8).reshape(-1, 32)
        return cls(np.array(ids, dtype=np.int64), hashes)

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.words.nbytes + sum(a.nbytes for a in (*self.order, *self.offsets))

    def search(self, pdq: str, radius: int = MATCH_DISTANCE) -> list[tuple[int, int]]:
        """(id, distance) of every hash within `radius` (at most 31) of the hex `pdq`, nearest first."""
        if not 0 <= radius <= 2 * _CHUNKS - 1:
            raise ValueError("multi-index hashing over 16 chunks finds distances up to 31 only")
        if not len(self.ids):
            return []
        query = np.frombuffer(bytes.fromhex(pdq), dtype=np.uint8)
        # A radius under 16 leaves some chunk equal; up to 31, some chunk within one bit.
        keys = _NEIGHBOURS[:1] if radius < _CHUNKS else _NEIGHBOURS
        slices = []
        for k, value in enumerate(query.view(">u2").astype(np.int64)):
            offsets, order = self.offsets[k], self.order[k]
            for key in value ^ keys:
                start, end = offsets[key], offsets[key + 1]
                if end > start:
                    slices.append(order[start:end])
        if not slices:
            return []
        rows = np.unique(np.concatenate(slices))
        distances = np.bitwise_count(self.words[rows] ^ query.view(">u8").astype(np.uint64)).sum(axis=1)
        near = distances <= radius
        found = sorted(zip(distances[near].tolist(), self.ids[rows[near]].tolist(), strict=True))
        return [(row_id, distance) for distance, row_id in found]


@dataclass(frozen=True, slots=True)
class _Cached:
    key: tuple[tuple[object, ...], ...]
    index: PdqIndex


_cache: _Cached | None = None
_lock = threading.Lock()


def _banks_key() -> tuple[tuple[object, ...], ...]:
    # The revision is what changes with the hashes; the time also tells apart a bank rebuilt under
    # a reused primary key (a restored backup, a test database).
    return tuple(HashBank.objects.filter(active=True).order_by("pk").values_list("pk", "revision", "updated_at"))


def build_index(*, bank: HashBank | None = None) -> PdqIndex:
    """The PDQ hashes of one bank, or of every active bank, skipping those listed below quality 50."""
    rows = BankedHash.objects.filter(kind=HashKind.PDQ).exclude(quality__lt=MIN_QUALITY)
    rows = rows.filter(bank=bank) if bank is not None else rows.filter(bank__active=True)
    return PdqIndex.from_hex(rows.order_by().values_list("pk", "value").iterator(chunk_size=20_000))


def current_index() -> PdqIndex:
    """This process's index of every active bank, rebuilt first if a bank changed since it was built.

    Costs one small query when nothing changed (the banks' revisions)."""
    global _cache
    key = _banks_key()
    with _lock:
        if _cache is None or _cache.key != key:
            _cache = _Cached(key, build_index())
        return _cache.index
