"""Deterministic ids: ``msg_01…``, ``toolu_01…``, ``req_01…``, ``msgbatch_01…``.

Each prefix has its own counter; the id is a hash of the seed, the prefix and the count, so
two emulators with the same seed hand out the same ids in the same order, and ids look like
the API's (a prefix, then 24 base-58 characters starting with ``01``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict

__all__ = ["IdFactory"]

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes, length: int) -> str:
    n = int.from_bytes(data, "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, 58)
        out.append(_ALPHABET[r])
    return "".join(out)


class IdFactory:
    """Hands out ids from per-prefix counters. Thread-safe."""

    def __init__(self, *, seed: int = 0) -> None:
        self._seed = seed
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def next(self, prefix: str) -> str:
        """The next id for ``prefix`` (e.g. ``"msg_"``)."""
        with self._lock:
            self._counts[prefix] += 1
            n = self._counts[prefix]
        digest = hashlib.blake2b(f"{self._seed}:{prefix}:{n}".encode(), digest_size=24).digest()
        return f"{prefix}01{_base58(digest, 22)}"

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
