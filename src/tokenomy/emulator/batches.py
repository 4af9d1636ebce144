"""Message Batches: create, retrieve, list, cancel, delete, results — in emulated time.

Timing (documented in ``docs/emulator.md``): a batch created at ``T`` with ``n`` requests runs
them one by one in a seeded shuffled order, request ``k`` (0-based, in that order) at
``T + (k + 1) × seconds_per_request``; the batch ends at
``max(T + min_seconds, time of the last request)``, or at ``T + 24 h`` (``expires_at``) if that
comes first — the requests left then are ``expired``. Work happens when the clock says so:
before every API request the app calls :meth:`BatchStore.progress` with the current time, so
a batch's cache reads and writes interleave with interactive traffic in time order.

Memory stays flat with batch size: the request body is spooled to a temporary file as it
arrives, scanned for the byte spans of its requests (each parsed alone, then dropped), and
each request is read back from the file only when it runs. Results are appended to a second
file in result order (the shuffled order, then canceled / expired requests) and streamed from
disk.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import random
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from tokenomy.emulator.batch_envelope import scan_requests
from tokenomy.emulator.clock import rfc3339
from tokenomy.emulator.ids import IdFactory
from tokenomy.emulator.server import ApiError

__all__ = [
    "BatchLimits",
    "BatchStore",
    "BatchTiming",
    "Processor",
    "paginate",
]

Status = Literal["in_progress", "canceling", "ended"]

# (params, scope, now_s, tag) -> the `result` object of a result line ({"type": "succeeded", …});
# `tag` is what the creator attached to the batch (the app: the brain's name).
Processor = Callable[[Mapping[str, Any], str, float, str], dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchTiming:
    """How long batches take, in emulated seconds."""

    seconds_per_request: float = 0.01
    min_seconds: float = 10.0
    # how long a batch stays `canceling` before it ends
    cancel_seconds: float = 1.0
    expiry_s: float = 86_400.0
    # opt-in: each poll (retrieve/list) of an unfinished batch advances the clock this much
    poll_advance_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchLimits:
    max_requests: int = 100_000
    max_body_bytes: int = 256 * 1024 * 1024


class _Batch:
    """One batch's state. Mutated only under the store's lock."""

    def __init__(
        self,
        *,
        batch_id: str,
        seq: int,
        scope: str,
        created_at_s: float,
        timing: BatchTiming,
        custom_ids: list[str],
        spans: tuple[array[int], array[int]],
        spool: Path,
        results: Path,
        seed: int,
        tag: str,
    ) -> None:
        self.id = batch_id
        self.seq = seq
        self.scope = scope
        self.created_at_s = created_at_s
        self.expires_at_s = created_at_s + timing.expiry_s
        self.per_request_s = timing.seconds_per_request
        self.cancel_seconds = timing.cancel_seconds
        self.n = len(custom_ids)
        self.custom_ids = custom_ids
        self.starts, self.ends = spans
        order = list(range(self.n))
        random.Random(f"{seed}:{batch_id}").shuffle(order)
        self.order = array("I", order)
        del order
        self.spool = spool
        self.results = results
        self.done = 0  # positions of `order` processed
        self.counts = {"succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        self.cancel_at_s: float | None = None
        self.ended_at_s: float | None = None  # set when the last result line is written
        last = created_at_s + self.n * timing.seconds_per_request
        self.natural_end_s = min(self.expires_at_s, max(created_at_s + timing.min_seconds, last))
        self.tag = tag

    # -- schedule ---------------------------------------------------------------------------
    def time_of(self, k: int) -> float:
        return self.created_at_s + (k + 1) * self.per_request_s

    @property
    def finalized(self) -> bool:
        return self.ended_at_s is not None

    def next_event_s(self) -> float:
        """When this batch next needs work (a request to run, or its end)."""
        if self.done < self.n and self.time_of(self.done) <= self.stop_running_s:
            return self.time_of(self.done)
        return self.stop_running_s

    @property
    def stop_running_s(self) -> float:
        return self.cancel_at_s if self.cancel_at_s is not None else self.natural_end_s

    def status(self, now_s: float) -> Status:
        if self.ended_at_s is not None and now_s >= self.ended_at_s:
            return "ended"
        if self.cancel_at_s is not None:
            return "canceling"
        return "in_progress"

    # -- work -------------------------------------------------------------------------------
    def run_until(self, until_s: float, processor: Processor) -> None:
        # Files are opened per call, never held between calls: nothing to leak or to close.
        if self.done < self.n and self.time_of(self.done) <= min(until_s, self.stop_running_s):
            # pread, not a map: requests run in shuffled order, and a map would end up holding
            # the whole body in the process's resident memory.
            with self.spool.open("rb") as fh, self.results.open("ab") as out:
                while self.done < self.n:
                    t = self.time_of(self.done)
                    if t > until_s or t > self.stop_running_s:
                        break
                    idx = self.order[self.done]
                    start = self.starts[idx]
                    element = os.pread(fh.fileno(), self.ends[idx] - start, start)
                    result = _run_one(element, processor, self.scope, t, self.tag)
                    kind = "succeeded" if result.get("type") == "succeeded" else "errored"
                    self.counts[kind] += 1
                    self._write(out, idx, result)
                    self.done += 1
        if self.stop_running_s <= until_s and not self.finalized:
            self._finalize()

    def _finalize(self) -> None:
        kind = "canceled" if self.cancel_at_s is not None else "expired"
        with self.results.open("ab") as out:
            while self.done < self.n:
                self.counts[kind] += 1
                self._write(out, self.order[self.done], {"type": kind})
                self.done += 1
        if self.cancel_at_s is not None:
            self.ended_at_s = self.cancel_at_s + self.cancel_seconds
        else:
            self.ended_at_s = self.natural_end_s
        # Done with the requests: free the spooled body.
        with contextlib.suppress(OSError):
            self.spool.unlink()

    def _write(self, out: BinaryIO, idx: int, result: Mapping[str, Any]) -> None:
        out.write(orjson.dumps({"custom_id": self.custom_ids[idx], "result": result}))
        out.write(b"\n")

    def discard(self) -> None:
        for path in (self.spool, self.results):
            with contextlib.suppress(OSError):
                path.unlink()

    # -- wire -------------------------------------------------------------------------------
    def to_wire(self, now_s: float, *, base_url: str) -> dict[str, Any]:
        status = self.status(now_s)
        ended = status == "ended"
        counts = {
            "processing": 0 if ended else self.n,
            "succeeded": self.counts["succeeded"] if ended else 0,
            "errored": self.counts["errored"] if ended else 0,
            "canceled": self.counts["canceled"] if ended else 0,
            "expired": self.counts["expired"] if ended else 0,
        }
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "ended_at": rfc3339(self.ended_at_s) if ended and self.ended_at_s else None,
            "created_at": rfc3339(self.created_at_s),
            "expires_at": rfc3339(self.expires_at_s),
            "archived_at": None,
            "cancel_initiated_at": None if self.cancel_at_s is None else rfc3339(self.cancel_at_s),
            "results_url": f"{base_url.rstrip('/')}/v1/messages/batches/{self.id}/results"
            if ended
            else None,
        }


def _run_one(
    element: bytes, processor: Processor, scope: str, now_s: float, tag: str
) -> dict[str, Any]:
    try:
        params = orjson.loads(element)["params"]
        return processor(params, scope, now_s, tag)
    except Exception as exc:  # a bug must not wedge the whole batch: report it per request
        return {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": "api_error", "message": f"Internal server error ({exc!r:.200})"},
            },
        }


class BatchStore:
    """All batches of one emulator. Thread-safe: changes take the store's lock; reads need none."""

    def __init__(
        self,
        *,
        processor: Processor,
        ids: IdFactory,
        timing: BatchTiming | None = None,
        limits: BatchLimits | None = None,
        spool_dir: Path,
        seed: int = 0,
    ) -> None:
        self._processor = processor
        self._ids = ids
        self.timing = timing or BatchTiming()
        self.limits = limits or BatchLimits()
        self._dir = spool_dir
        self._seed = seed
        self._batches: dict[str, _Batch] = {}
        self._seq = 0
        self._lock = threading.RLock()

    # -- lifecycle --------------------------------------------------------------------------
    def new_spool_path(self) -> Path:
        """A fresh file for a request body being received."""
        self._dir.mkdir(parents=True, exist_ok=True)
        fd, name = _mkstemp(self._dir, "body-")
        os.close(fd)
        return Path(name)

    def create(self, spool: Path, *, scope: str, now_s: float, tag: str = "") -> _Batch:
        """Validate the envelope in ``spool`` (a received body) and register the batch.

        Raises :class:`ApiError` (400 / 413); the spool file then is deleted.
        """
        try:
            custom_ids, spans = scan_requests(spool, max_requests=self.limits.max_requests)
        except BaseException:
            with contextlib.suppress(OSError):
                spool.unlink()
            raise
        with self._lock:
            self.progress(now_s)
            fd, name = _mkstemp(self._dir, "results-")
            os.close(fd)
            self._seq += 1
            batch = _Batch(
                batch_id=self._ids.next("msgbatch_"),
                seq=self._seq,
                scope=scope,
                created_at_s=now_s,
                timing=self.timing,
                custom_ids=custom_ids,
                spans=spans,
                spool=spool,
                results=Path(name),
                seed=self._seed,
                tag=tag,
            )
            self._batches[batch.id] = batch
            return batch

    def reset(self) -> None:
        with self._lock:
            for b in self._batches.values():
                b.discard()
            self._batches.clear()
            self._seq = 0

    # -- time -------------------------------------------------------------------------------
    def pending(self, now_s: float) -> bool:
        """Whether :meth:`progress` would do any work (cheap, lock-free: a hint)."""
        batches = list(self._batches.values())
        return any(not b.finalized and b.next_event_s() <= now_s for b in batches)

    def progress(self, now_s: float) -> None:
        """Run every batch request due by ``now_s``, across batches in time order."""
        with self._lock:
            heap = [
                (b.next_event_s(), b.seq, b)
                for b in self._batches.values()
                if not b.finalized and b.next_event_s() <= now_s
            ]
            heapq.heapify(heap)
            while heap:
                _, _, batch = heapq.heappop(heap)
                # Run this batch until the next other batch is due (or now), then re-queue it.
                until = min(now_s, heap[0][0]) if heap else now_s
                batch.run_until(until, self._processor)
                if not batch.finalized and batch.next_event_s() <= now_s:
                    heapq.heappush(heap, (batch.next_event_s(), batch.seq, batch))

    # -- API --------------------------------------------------------------------------------
    # Reads take no lock: the app calls them on its event loop, which must not wait while a
    # worker thread runs a large batch. A dict lookup or a snapshot of its values is atomic.
    def get(self, batch_id: str, *, scope: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None or batch.scope != scope:
            raise ApiError(404, f"Message Batch {batch_id!r} not found.")
        return batch

    def list_page(
        self, *, scope: str, limit: int, after_id: str | None, before_id: str | None
    ) -> tuple[list[_Batch], bool]:
        """A page of batches, newest first, and whether more exist in that direction."""
        mine = sorted(
            (b for b in list(self._batches.values()) if b.scope == scope),
            key=lambda b: (b.created_at_s, b.seq),
            reverse=True,
        )
        start, end, more = paginate(
            [b.id for b in mine], limit=limit, after_id=after_id, before_id=before_id
        )
        return mine[start:end], more

    def cancel(self, batch_id: str, *, scope: str, now_s: float) -> _Batch:
        with self._lock:
            self.progress(now_s)
            batch = self.get(batch_id, scope=scope)
            if batch.cancel_at_s is None and not batch.finalized:
                batch.cancel_at_s = now_s
                batch.run_until(now_s, self._processor)
            return batch

    def delete(self, batch_id: str, *, scope: str, now_s: float) -> None:
        with self._lock:
            self.progress(now_s)
            batch = self.get(batch_id, scope=scope)
            if batch.status(now_s) != "ended":
                raise ApiError(
                    400,
                    f"Message Batch {batch_id!r} is still processing; cancel it and wait until "
                    "its processing_status is 'ended' before deleting it.",
                )
            del self._batches[batch_id]
            batch.discard()

    def results(self, batch_id: str, *, scope: str, now_s: float) -> Iterator[bytes]:
        """The results file in chunks; raises before the first chunk if not available."""
        with self._lock:
            self.progress(now_s)
            batch = self.get(batch_id, scope=scope)
            if batch.status(now_s) != "ended":
                raise ApiError(
                    400,
                    f"Message Batch {batch_id!r} has not finished processing; results are "
                    "available once its processing_status is 'ended'.",
                )
            fh = batch.results.open("rb")
        return _chunks(fh)

    def stats(self, now_s: float) -> dict[str, Any]:
        batches = list(self._batches.values())
        by_status: dict[str, int] = {"in_progress": 0, "canceling": 0, "ended": 0}
        for b in batches:
            by_status[b.status(now_s)] += 1
        return {"batches": len(batches), "requests": sum(b.n for b in batches), **by_status}


def paginate(
    ids: list[str], *, limit: int, after_id: str | None, before_id: str | None
) -> tuple[int, int, bool]:
    """``[start, end)`` of the page of ``ids`` (newest first) and whether more lie beyond it.

    As the API pages: ``after_id`` gives the items after that one, ``before_id`` the ``limit``
    items just before it; an unknown cursor gives an empty page.
    """
    if before_id is not None:
        if before_id not in ids:
            return 0, 0, False
        end = ids.index(before_id)
        start = max(0, end - limit)
        return start, end, start > 0
    start = 0
    if after_id is not None:
        if after_id not in ids:
            return 0, 0, False
        start = ids.index(after_id) + 1
    end = min(len(ids), start + limit)
    return start, end, end < len(ids)


def _chunks(fh: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(size):
            yield chunk


def _mkstemp(directory: Path, prefix: str) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix=prefix, suffix=".jsonl", dir=directory)
