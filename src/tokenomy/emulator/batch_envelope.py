"""A batch-create body, checked on disk without being loaded: the envelope's rules.

The body may be hundreds of megabytes. :func:`scan_requests` walks it through a memory map
with a few regular expressions (strings and nesting only), parses one request at a time to
check it, keeps its custom id and byte span, and releases the pages it has passed, so the
process's resident memory stays flat whatever the body's size.
"""

from __future__ import annotations

import mmap
import re
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from tokenomy.emulator.server import ApiError

__all__ = ["CUSTOM_ID_RE", "scan_requests"]

CUSTOM_ID_RE: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
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
