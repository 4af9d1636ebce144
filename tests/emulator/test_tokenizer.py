"""The emulator's tokenizer: the documented formulas, exactly."""

from __future__ import annotations

import base64
import struct

import pytest

from tests.emulator.test_server_cache_rules import png
from tokenomy.data import builtin_table
from tokenomy.emulator.tokenizer import (
    FRAMING,
    IMAGE_UNKNOWN_TOKENS,
    PDF_PAGE_TOKENS,
    compact_json,
    content_block_tokens,
    generation_of,
    image_dimensions,
    image_tokens,
    json_tokens,
    pdf_pages,
    text_tokens,
    tool_overhead_tokens,
    tool_tokens,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("The quick brown fox jumps over the lazy dog.", 10),  # single spaces are free
        ("internationalization", 4),  # letters in runs of up to 6
        ("12345", 2),  # digits in runs of up to 3
        ("!!!!", 2),  # punctuation in runs of up to 3
        ("a\nb", 3),  # a newline is a token
        ("a    b", 3),  # a run of 2–8 spaces is one token
        ("日本語", 3),  # any other character is a token
        ('{"a":1}', 5),  # {"  a  ":  1  }
    ],
)
def test_text_tokens_2023(text: str, tokens: int) -> None:
    assert text_tokens(text, generation="2023") == tokens


def test_2026_tokenizer_is_thirty_percent_more() -> None:
    """§2.5: Opus 4.7+ "produce about 30% more tokens for the same text": n + ceil(3n/10)."""
    for n in (1, 7, 10, 1000):
        text = " ".join(["word"] * n)
        assert text_tokens(text, generation="2026") == n + -(-3 * n // 10)
    table = builtin_table()
    assert generation_of(table.get("claude-opus-4-7")) == "2026"
    assert generation_of(table.get("claude-opus-4-6")) == "2023"


def test_json_keeps_the_clients_key_order() -> None:
    assert compact_json({"b": 1, "a": [1, 2]}) == '{"b":1,"a":[1,2]}'
    assert compact_json({"big": 2**80}) == '{"big":1208925819614629174706176}'
    assert json_tokens({"q": "x"}, generation="2023") == text_tokens('{"q":"x"}', generation="2023")


def test_image_tokens_follow_the_documented_formula() -> None:
    """ceil(w*h/750) after downscaling to a 1568 px long edge and ~1,600 tokens (the docs'
    table: 1092×1092 → 1,590 tokens)."""

    def tokens(w: int, h: int) -> int:
        return image_tokens({"type": "base64", "media_type": "image/png", "data": png(w, h)})

    assert tokens(200, 200) == 54  # 40,000 / 750 = 53.3
    assert tokens(1000, 1000) == 1334
    assert tokens(1092, 1092) == 1590
    assert tokens(1500, 1500) == 1599  # shrunk to the cap; pixel sizes round down
    assert tokens(4000, 1000) == 820  # long edge 1568: 1568 × 392 / 750
    assert image_tokens({"type": "url", "url": "https://x.invalid/a.png"}) == IMAGE_UNKNOWN_TOKENS


def test_image_headers_of_every_supported_format() -> None:
    gif = b"GIF89a" + struct.pack("<HH", 30, 20) + b"\x00" * 8
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", 16)
        + b"JFIF\x00" * 2
        + b"\x00" * 4
        + b"\xff\xc0"
        + struct.pack(">HBHH", 17, 8, 48, 64)
        + b"\x00" * 12
    )
    webp = b"RIFF" + b"\x00" * 4 + b"WEBP" + b"VP8X" + b"\x00" * 8 + (99).to_bytes(3, "little")
    webp += (49).to_bytes(3, "little")
    cases = {
        "image/png": (base64.b64decode(png(7, 9)), (7, 9)),
        "image/gif": (gif, (30, 20)),
        "image/jpeg": (jpeg, (64, 48)),
        "image/webp": (webp, (100, 50)),
    }
    for media, (data, size) in cases.items():
        info = image_dimensions(data)
        assert info is not None, media
        assert (info.media_type, info.width_px, info.height_px) == (media, *size)
    assert image_dimensions(b"not an image at all") is None


def test_documents() -> None:
    pdf = b"%PDF-1.4 /Type /Pages /Type /Page /Type/Page /Type /Page"
    assert pdf_pages(pdf) == 3
    block = {
        "type": "document",
        "source": {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(pdf).decode(),
        },
    }
    assert (
        content_block_tokens(block, generation="2023") == FRAMING["document"] + 3 * PDF_PAGE_TOKENS
    )
    text_doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "a b c"},
    }
    assert content_block_tokens(text_doc, generation="2023") == FRAMING["document"] + 3


def test_tool_result_string_and_text_block_cost_the_same() -> None:
    as_string = {"type": "tool_result", "tool_use_id": "t", "content": "some words here"}
    as_blocks = {**as_string, "content": [{"type": "text", "text": "some words here"}]}
    assert content_block_tokens(as_string, generation="2023") == content_block_tokens(
        as_blocks, generation="2023"
    )


def test_every_block_kind_counts() -> None:
    use = {"type": "tool_use", "id": "t", "name": "get", "input": {"city": "Paris"}}
    assert content_block_tokens(use, generation="2023") == FRAMING["tool_use"] + 1 + json_tokens(
        {"city": "Paris"}, generation="2023"
    )
    thinking = {"type": "thinking", "thinking": "let me see", "signature": "xyz"}
    assert content_block_tokens(thinking, generation="2023") == FRAMING["thinking"] + 3
    server = {"type": "web_search_tool_result", "tool_use_id": "s", "content": []}
    assert content_block_tokens(server, generation="2023") > FRAMING["other"]
    definition = {
        "name": "f",
        "input_schema": {"type": "object"},
        "cache_control": {"type": "ephemeral"},
    }
    assert tool_tokens(definition, generation="2023") == FRAMING["tool"] + json_tokens(
        {"name": "f", "input_schema": {"type": "object"}}, generation="2023"
    )


def test_tool_use_system_prompt_overhead_from_the_table() -> None:
    """§2.5 "Tool-use system prompt overhead … (auto/none → any/tool)"."""
    table = builtin_table()
    assert tool_overhead_tokens(table.get("claude-opus-4-8"), forced=False) == 290
    assert tool_overhead_tokens(table.get("claude-opus-4-8"), forced=True) == 410
    assert tool_overhead_tokens(table.get("claude-haiku-4-5"), forced=True) == 588
    # no row in the table: the documented fallback for the tokenizer generation
    assert tool_overhead_tokens(table.get("claude-fable-5"), forced=False) == 286
