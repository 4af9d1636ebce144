"""Splitting a job's requests into batches within the API's limits (pure).

A batch holds at most 100,000 requests and 256 MB of body (reference §3.4); the runner's own
cap on bytes is lower by default (it holds one body in memory while uploading it). Requests
keep their order: chunk ``k`` holds a contiguous run of the requests still to send, which is
also the order the results file follows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tokenomy.batch.jobs import envelope_bytes
from tokenomy.errors import BatchError

__all__ = ["pack"]

_ENVELOPE = envelope_bytes(())


def pack(
    items: Iterable[tuple[int, int]], *, max_requests: int, max_bytes: int
) -> Iterator[list[int]]:
    """Group ``(seq, encoded_bytes)`` items into chunks of seqs within both limits.

    Each chunk is as full as the next item allows (greedy, order kept). An item too large for
    any batch on its own raises :class:`BatchError` (validation refuses such lines first).
    """
    group: list[int] = []
    size = _ENVELOPE
    for seq, item_bytes in items:
        if _ENVELOPE + item_bytes > max_bytes:
            raise BatchError(
                f"request {seq} is {item_bytes:,} bytes: it cannot fit in a batch of at most "
                f"{max_bytes:,} bytes; raise --max-batch-bytes (the API allows 256 MB)"
            )
        added = item_bytes + (1 if group else 0)
        if group and (len(group) >= max_requests or size + added > max_bytes):
            yield group
            group, size, added = [], _ENVELOPE, item_bytes
        group.append(seq)
        size += added
    if group:
        yield group
