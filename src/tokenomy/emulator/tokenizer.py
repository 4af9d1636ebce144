"""The emulator's tokenizer: a deterministic, documented stand-in for Claude's.

Claude's real tokenizer is not public. The emulator needs counts that behave like real ones
(English ~4 characters a token, JSON and code denser, non-Latin scripts ~1 token a character,
the 2026 tokenizer ~30% more tokens for the same text) and that are exactly reproducible, so
that every number a test asserts can be derived by hand. The formulas, all in this module:

* **Text** (tokenizer generation ``"2023"``): the number of matches of :data:`_PIECE` — a run
  of up to 6 ASCII letters, a run of up to 3 digits, a run of up to 3 ASCII punctuation
  characters, a newline, a run of 2–8 spaces/tabs, any other single character (non-ASCII,
  control). A single space or tab is free: it merges into the next word, as BPE merges " the".
* **Text** (generation ``"2026"``, Opus 4.7 and later): ``n + ceil(3n / 10)`` where ``n`` is
  the 2023 count — the reference's "about 30% more tokens" made exact.
* **JSON** (tool inputs, schemas, server-tool blocks): the text count of its compact JSON
  (``separators=(",", ":")``, keys in the order the client sent them).
* **Images**: the documented ``ceil(width * height / 750)`` after the documented downscale
  (long edge ≤ 1568 px, then at most ~1,600 tokens, i.e. an area of 1.2 MP; the docs' table
  prices 1092×1092 at 1,590 tokens, so the "1.15 MP" of the prose is a rounding).
  Dimensions come from the PNG/GIF/JPEG/WebP header of base64 data; a URL or file source
  (no bytes) costs :data:`IMAGE_UNKNOWN_TOKENS` (the largest an image can cost).
* **PDF documents**: :data:`PDF_PAGE_TOKENS` per page (the docs give 1,500–3,000 per page for
  text plus page image); pages are counted from ``/Type /Page`` objects; URL/file PDFs count as
  one page. Plain-text and content documents count their text.
* **Framing**: each block kind adds a few fixed tokens (:data:`FRAMING`); each change of
  speaker adds :data:`TURN_HEADER_TOKENS`; a request ends with :data:`PROMPT_TAIL_TOKENS`
  (the assistant cue, never cached); the tool-use system prompt adds the model table's
  ``tool_system_tokens`` when ``tools`` are present.

Everything is a pure function of its input; :mod:`tokenomy.emulator._prompt` memoises block
counts by content hash so a long conversation is tokenized once.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from tokenomy.data.table import ModelInfo

__all__ = [
    "FRAMING",
    "IMAGE_UNKNOWN_TOKENS",
    "PDF_PAGE_TOKENS",
    "PROMPT_TAIL_TOKENS",
    "TURN_HEADER_TOKENS",
    "ImageInfo",
    "compact_json",
    "content_block_tokens",
    "generation_of",
    "image_dimensions",
    "image_tokens",
    "json_tokens",
    "pdf_pages",
    "text_tokens",
    "tool_overhead_tokens",
    "tool_tokens",
]

_PIECE: Final = re.compile(
    r"[A-Za-z]{1,6}|[0-9]{1,3}|[!-/:-@\[-`{-~]{1,3}|\n|[ \t]{2,8}|[^ \t\n!-~]"
)

#: tokens a new speaker turn costs (the role header), charged to the turn's first block
TURN_HEADER_TOKENS: Final = 3
#: the assistant cue after the last block: always uncached ``input_tokens``
PROMPT_TAIL_TOKENS: Final = 3
#: fixed tokens per block kind, on top of the block's own text
FRAMING: Final[Mapping[str, int]] = {
    "text": 0,
    "tool": 4,
    "tool_use": 6,
    "tool_result": 5,
    "image": 0,
    "document": 8,
    "search_result": 6,
    "thinking": 2,
    "redacted_thinking": 2,
    "other": 2,
}
#: a URL/file image without bytes to measure: the largest an image can cost
IMAGE_UNKNOWN_TOKENS: Final = 1_600
#: one PDF page (text plus the page image)
PDF_PAGE_TOKENS: Final = 2_000
_LONG_EDGE_PX: Final = 1_568
_MAX_PIXELS: Final = IMAGE_UNKNOWN_TOKENS * 750
#: tool-use system prompt (auto/none, any/tool) for models whose table row has none
_DEFAULT_TOOL_SYSTEM: Final[Mapping[str, tuple[int, int]]] = {
    "2026": (286, 406),  # as Opus 5
    "2023": (496, 588),  # as the 4.5 generation
}


def generation_of(model: ModelInfo) -> str:
    """The tokenizer generation of ``model``: ``"2026"`` for Opus 4.7+, else ``"2023"``."""
    return "2026" if model.tokenizer == "2026" else "2023"


def text_tokens(text: str, *, generation: str) -> int:
    """Tokens of ``text`` under ``generation`` (see the module docstring)."""
    if not text:
        return 0
    n = len(_PIECE.findall(text))
    if generation == "2026":
        n += (3 * n + 9) // 10
    return n


def compact_json(value: object) -> str:
    """Compact JSON of ``value``, keys in the client's order (the API is key-order sensitive)."""
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        # integers beyond 64 bits, unusual floats: the stdlib handles what orjson refuses
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def json_tokens(value: object, *, generation: str) -> int:
    """Tokens of ``value`` rendered as compact JSON."""
    return text_tokens(compact_json(value), generation=generation)


# ---------------------------------------------------------------- images


class ImageInfo:
    """Width and height in pixels of a decoded image header, and its real media type."""

    __slots__ = ("height_px", "media_type", "width_px")

    def __init__(self, media_type: str, width_px: int, height_px: int) -> None:
        self.media_type = media_type
        self.width_px = width_px
        self.height_px = height_px


_JPEG_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD})


def image_dimensions(data: bytes) -> ImageInfo | None:
    """Media type and size from the header of PNG, GIF, JPEG or WebP bytes; ``None`` if unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return ImageInfo("image/png", w, h) if w and h else None
    if data[:4] == b"GIF8" and len(data) >= 10:
        w, h = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
        return ImageInfo("image/gif", w, h) if w and h else None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    return None


def _webp(data: bytes) -> ImageInfo | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w = int.from_bytes(data[26:28], "little") & 0x3FFF
        h = int.from_bytes(data[28:30], "little") & 0x3FFF
    elif chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
    else:
        return None
    return ImageInfo("image/webp", w, h) if w and h else None


def _jpeg(data: bytes) -> ImageInfo | None:
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_SOF:
            h = int.from_bytes(data[i + 5 : i + 7], "big")
            w = int.from_bytes(data[i + 7 : i + 9], "big")
            return ImageInfo("image/jpeg", w, h) if w and h else None
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


_BASE64: Final = re.compile(r"[A-Za-z0-9+/\s]*={0,2}\s*")


def decode_base64(data: str) -> bytes | None:
    """The bytes of base64 ``data``; ``None`` when it is not base64."""
    if not _BASE64.fullmatch(data):
        return None
    try:
        return binascii.a2b_base64(data.encode("ascii"), strict_mode=False)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def image_tokens(source: Mapping[str, Any]) -> int:
    """Tokens of an image ``source``: the documented area formula after downscaling."""
    if source.get("type") != "base64" or not isinstance(source.get("data"), str):
        return IMAGE_UNKNOWN_TOKENS
    raw = decode_base64(source["data"])
    info = image_dimensions(raw) if raw is not None else None
    if info is None:
        return IMAGE_UNKNOWN_TOKENS
    w, h = float(info.width_px), float(info.height_px)
    scale = min(1.0, _LONG_EDGE_PX / max(w, h))
    w, h = w * scale, h * scale
    if w * h > _MAX_PIXELS:
        shrink = (_MAX_PIXELS / (w * h)) ** 0.5
        w, h = w * shrink, h * shrink
    return max(1, -(-int(w) * int(h) // 750))


_PDF_PAGE: Final = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def pdf_pages(data: bytes) -> int:
    """Pages of a PDF, counted as ``/Type /Page`` objects; at least 1."""
    return max(1, len(_PDF_PAGE.findall(data)))


# ---------------------------------------------------------------- blocks


def _content_tokens(content: object, *, generation: str) -> int:
    """Tokens of a ``content`` field: a string or a list of blocks."""
    if isinstance(content, str):
        return text_tokens(content, generation=generation)
    if isinstance(content, list):
        return sum(
            content_block_tokens(b, generation=generation) for b in content if isinstance(b, dict)
        )
    return 0


def _document_tokens(block: Mapping[str, Any], *, generation: str) -> int:
    source = block.get("source")
    n = FRAMING["document"]
    for key in ("title", "context"):
        if isinstance(block.get(key), str):
            n += text_tokens(block[key], generation=generation)
    if not isinstance(source, dict):
        return n
    kind = source.get("type")
    if kind == "text" and isinstance(source.get("data"), str):
        return n + text_tokens(source["data"], generation=generation)
    if kind == "content":
        return n + _content_tokens(source.get("content"), generation=generation)
    if kind == "base64" and isinstance(source.get("data"), str):
        raw = decode_base64(source["data"])
        if raw is not None and source.get("media_type") == "text/plain":
            text = raw.decode("utf-8", errors="replace")
            return n + text_tokens(text, generation=generation)
        return n + PDF_PAGE_TOKENS * (pdf_pages(raw) if raw is not None else 1)
    return n + PDF_PAGE_TOKENS  # url / file: one page, unseen


def content_block_tokens(block: Mapping[str, Any], *, generation: str) -> int:
    """Tokens of one content block (input or generated), framing included, no turn header."""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return text_tokens(text, generation=generation) if isinstance(text, str) else 0
    if kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        name = block.get("name")
        n = FRAMING["tool_use"] + json_tokens(block.get("input", {}), generation=generation)
        return n + (text_tokens(name, generation=generation) if isinstance(name, str) else 0)
    if kind == "tool_result":
        return FRAMING["tool_result"] + _content_tokens(block.get("content"), generation=generation)
    if kind == "image":
        source = block.get("source")
        return FRAMING["image"] + (image_tokens(source) if isinstance(source, dict) else 0)
    if kind == "document":
        return _document_tokens(block, generation=generation)
    if kind == "search_result":
        n = FRAMING["search_result"] + _content_tokens(block.get("content"), generation=generation)
        for key in ("source", "title"):
            if isinstance(block.get(key), str):
                n += text_tokens(block[key], generation=generation)
        return n
    if kind == "thinking":
        thinking = block.get("thinking")
        body = text_tokens(thinking, generation=generation) if isinstance(thinking, str) else 0
        return FRAMING["thinking"] + body
    if kind == "redacted_thinking":
        data = block.get("data")
        return FRAMING["redacted_thinking"] + (len(data) // 4 if isinstance(data, str) else 0)
    # server-tool results, compaction, container uploads, tool references …: their JSON
    rest = {k: v for k, v in block.items() if k not in ("cache_control", "citations")}
    return FRAMING["other"] + json_tokens(rest, generation=generation)


def tool_tokens(tool: Mapping[str, Any], *, generation: str) -> int:
    """Tokens of one tool definition: its JSON without ``cache_control``, plus framing."""
    rest = {k: v for k, v in tool.items() if k != "cache_control"}
    return FRAMING["tool"] + json_tokens(rest, generation=generation)


def tool_overhead_tokens(model: ModelInfo, *, forced: bool) -> int:
    """The tool-use system prompt ``model`` adds when ``tools`` are present.

    ``forced`` is ``tool_choice`` any/tool (the larger figure); auto/none is the smaller one.
    """
    pair = model.tool_system_tokens or _DEFAULT_TOOL_SYSTEM[generation_of(model)]
    return pair[1] if forced else pair[0]
