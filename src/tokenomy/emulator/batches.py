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
import mmap
import os
import random
import re
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

import orjson

from tokenomy.emulator.clock import rfc3339
from tokenomy.emulator.ids import IdFactory
from tokenomy.emulator.server import ApiError

__all__ = [
    "CUSTOM_ID_RE",
    "BatchLimits",
    "BatchStore",
    "BatchTiming",
    "Processor",
    "paginate",
    "scan_requests",
]

CUSTOM_ID_RE: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
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
    """All batches of one emulator. Thread-safe: every method takes the store's lock."""

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
        """Whether :meth:`progress` would do any work (cheap; no lock needed for a hint)."""
        return any(
            not b.finalized and b.next_event_s() <= now_s for b in list(self._batches.values())
        )

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
    def get(self, batch_id: str, *, scope: str) -> _Batch:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None or batch.scope != scope:
                raise ApiError(404, f"Message Batch {batch_id!r} not found.")
            return batch

    def list_page(
        self, *, scope: str, limit: int, after_id: str | None, before_id: str | None
    ) -> tuple[list[_Batch], bool]:
        """A page of batches, newest first, and whether more exist in that direction."""
        with self._lock:
            mine = sorted(
                (b for b in self._batches.values() if b.scope == scope),
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
        with self._lock:
            by_status: dict[str, int] = {"in_progress": 0, "canceling": 0, "ended": 0}
            requests = 0
            for b in self._batches.values():
                by_status[b.status(now_s)] += 1
                requests += b.n
            return {"batches": len(self._batches), "requests": requests, **by_status}


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


# -- the envelope scanner -------------------------------------------------------------------
_WS: Final = re.compile(rb"[ \t\r\n]*")
# the rest of a JSON string after its opening quote, closing quote included (unrolled loop)
_STRING_REST: Final = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_STRUCT: Final = re.compile(rb'["{}\[\]]')
_SCALAR: Final = re.compile(rb"[^,\]\}\s]+")
_RELEASE_BYTES: Final = 32 << 20


def _bad_json(where: str) -> ApiError:
    return ApiError(400, f"There was an error parsing the body as JSON ({where}).")


class _Scanner:
    """Finds value boundaries in a JSON document without building it (strings and nesting)."""

    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.size = len(buf)
        self._released = 0

    def release_before(self, i: int) -> None:
        """Tell the kernel the bytes before ``i`` are done with (they leave our resident set)."""
        if isinstance(self.buf, mmap.mmap) and i - self._released >= _RELEASE_BYTES:
            end = i - i % mmap.PAGESIZE
            self.buf.madvise(mmap.MADV_DONTNEED, 0, end)
            self._released = end

    def ws(self, i: int) -> int:
        m = _WS.match(self.buf, i)
        return m.end() if m else i

    def char(self, i: int) -> bytes:
        return bytes(self.buf[i : i + 1])

    def value_end(self, i: int) -> int:
        c = self.char(i)
        if c == b'"':
            m = _STRING_REST.match(self.buf, i + 1)
            if m is None:
                raise _bad_json(f"unterminated string at byte {i}")
            return m.end()
        if c in (b"{", b"["):
            depth, j = 0, i
            while True:
                m = _STRUCT.search(self.buf, j)
                if m is None:
                    raise _bad_json(f"unterminated value starting at byte {i}")
                ch = m.group(0)
                if ch == b'"':
                    s = _STRING_REST.match(self.buf, m.end())
                    if s is None:
                        raise _bad_json(f"unterminated string at byte {m.start()}")
                    j = s.end()
                    continue
                depth += 1 if ch in (b"{", b"[") else -1
                j = m.end()
                if depth == 0:
                    return j
        m2 = _SCALAR.match(self.buf, i)
        if m2 is None:
            raise _bad_json(f"expected a value at byte {i}")
        return m2.end()


def scan_requests(
    path: Path, *, max_requests: int
) -> tuple[list[str], tuple[array[int], array[int]]]:
    """Validate a batch-create body on disk; return the custom ids and each request's byte span.

    Checks what the API checks synchronously: JSON, the ``requests`` list, each item's
    ``custom_id`` (pattern, uniqueness) and that ``params`` is an object. ``params`` themselves
    are validated later, when each request runs.
    """
    size = path.stat().st_size
    if size == 0:
        raise _bad_json("the body is empty")
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return _scan(_Scanner(mm), max_requests=max_requests)


@dataclass(slots=True)
class _Found:
    """What the scan collects: each request's custom id and byte span."""

    custom_ids: list[str]
    starts: array[int]
    ends: array[int]
    seen: set[str]


def _scan(sc: _Scanner, *, max_requests: int) -> tuple[list[str], tuple[array[int], array[int]]]:
    found = _Found(custom_ids=[], starts=array("Q"), ends=array("Q"), seen=set())
    has_requests = False
    i = sc.ws(0)
    if sc.char(i) != b"{":
        raise ApiError(400, "Request body must be a JSON object with a 'requests' list.")
    i = sc.ws(i + 1)
    if sc.char(i) == b"}":
        i += 1
    else:
        while True:
            if sc.char(i) != b'"':
                raise _bad_json(f"expected a key at byte {i}")
            key_end = sc.value_end(i)
            key = orjson.loads(sc.buf[i:key_end])
            i = sc.ws(key_end)
            if sc.char(i) != b":":
                raise _bad_json(f"expected ':' at byte {i}")
            i = sc.ws(i + 1)
            if key == "requests" and sc.char(i) == b"[":
                has_requests = True
                i = _scan_list(sc, i, found, max_requests=max_requests)
            else:
                end = sc.value_end(i)
                try:
                    value = orjson.loads(sc.buf[i:end])
                except orjson.JSONDecodeError:
                    raise _bad_json(f"invalid value at byte {i}") from None
                if key == "requests":
                    raise ApiError(
                        400, f"requests: Input should be a valid list, got {value!r:.80}"
                    )
                i = end
            i = sc.ws(i)
            if sc.char(i) == b",":
                i = sc.ws(i + 1)
                continue
            if sc.char(i) == b"}":
                i += 1
                break
            raise _bad_json(f"expected ',' or '}}' at byte {i}")
    if sc.ws(i) != sc.size:
        raise _bad_json(f"unexpected data after the object at byte {sc.ws(i)}")
    if not has_requests:
        raise ApiError(400, "requests: Field required")
    if not found.custom_ids:
        raise ApiError(400, "requests: List should have at least 1 item after validation, not 0")
    return found.custom_ids, (found.starts, found.ends)


def _scan_list(sc: _Scanner, i: int, found: _Found, *, max_requests: int) -> int:
    i = sc.ws(i + 1)
    if sc.char(i) == b"]":
        return i + 1
    while True:
        n = len(found.custom_ids)
        if n >= max_requests:
            raise ApiError(
                413,
                f"A batch holds at most {max_requests:,} requests; split it into several batches.",
                error_type="request_too_large",
            )
        end = sc.value_end(i)
        try:
            item = orjson.loads(sc.buf[i:end])
        except orjson.JSONDecodeError:
            raise _bad_json(f"invalid request at requests.{n}") from None
        found.custom_ids.append(_check_item(item, n, found.seen))
        found.starts.append(i)
        found.ends.append(end)
        del item
        sc.release_before(end)
        i = sc.ws(end)
        if sc.char(i) == b",":
            i = sc.ws(i + 1)
            continue
        if sc.char(i) == b"]":
            return i + 1
        raise _bad_json(f"expected ',' or ']' at byte {i}")


def _check_item(item: Any, n: int, seen: set[str]) -> str:
    where = f"requests.{n}"
    if not isinstance(item, dict):
        raise ApiError(400, f"{where}: Input should be a valid dictionary")
    cid = item.get("custom_id")
    if cid is None:
        raise ApiError(400, f"{where}.custom_id: Field required")
    if not isinstance(cid, str) or not CUSTOM_ID_RE.match(cid):
        raise ApiError(
            400,
            f"{where}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$', "
            f"got {cid!r:.80}",
        )
    if cid in seen:
        raise ApiError(
            400,
            f"{where}.custom_id: {cid!r} is used by more than one request; "
            "each custom_id must be unique within a batch.",
        )
    seen.add(cid)
    if "params" not in item:
        raise ApiError(400, f"{where}.params: Field required")
    if not isinstance(item["params"], dict):
        raise ApiError(400, f"{where}.params: Input should be a valid dictionary")
    return cid
