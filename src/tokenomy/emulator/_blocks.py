"""Content-block checks shared by :mod:`tokenomy.emulator.validate`: blocks, images,
documents, tool results, ``cache_control`` markers, and the small helpers of the API's
pydantic-style messages (``path: problem``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeGuard

from tokenomy.emulator._errors import ApiError, bad_request
from tokenomy.emulator.tokenizer import decode_base64, image_dimensions

__all__ = [
    "CONTENT_TYPES",
    "blank",
    "check_block",
    "check_cache_control",
    "is_int",
    "is_num",
    "not_dict",
    "require_str",
    "tags",
]

CONTENT_TYPES: Final = (
    "bash_code_execution_tool_result",
    "code_execution_tool_result",
    "compaction",
    "container_upload",
    "document",
    "image",
    "mcp_tool_result",
    "mcp_tool_use",
    "redacted_thinking",
    "search_result",
    "server_tool_use",
    "text",
    "text_editor_code_execution_tool_result",
    "thinking",
    "tool_result",
    "tool_search_tool_result",
    "tool_use",
    "web_fetch_tool_result",
    "web_search_tool_result",
)
_TOOL_RESULT_CONTENT: Final = ("document", "image", "search_result", "text", "tool_reference")
_DOCUMENT_CONTENT: Final = ("image", "text")
_IMAGE_MEDIA: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")


def tags(options: Sequence[str]) -> str:
    return ", ".join(f"'{o}'" for o in options)


def not_dict(path: str) -> ApiError:
    return bad_request(
        f"{path}: Input should be a valid dictionary or object to extract fields from"
    )


def is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: object) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool)


def require_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    if key not in obj:
        raise bad_request(f"{path}.{key}: Field required")
    value = obj[key]
    if not isinstance(value, str):
        raise bad_request(f"{path}.{key}: Input should be a valid string")
    return value


def check_cache_control(cc: object, path: str) -> None:
    """``{"type": "ephemeral", "ttl"?: "5m" | "1h"}``."""
    if not isinstance(cc, Mapping):
        raise not_dict(path)
    if "type" not in cc:
        raise bad_request(f"{path}.type: Field required")
    if cc["type"] != "ephemeral":
        raise bad_request(f"{path}.type: Input should be 'ephemeral'")
    ttl = cc.get("ttl")
    if ttl is not None and ttl not in ("5m", "1h"):
        raise bad_request(f"{path}.ttl: Input should be '5m' or '1h'")


def blank(text: str) -> bool:
    return not text.strip()


# ---------------------------------------------------------------- content blocks


def check_block(block: object, path: str, *, allowed: Sequence[str], where: str) -> str:
    """One content block; returns its type. ``where`` is "messages" or "system" (for wording)."""
    if not isinstance(block, Mapping):
        raise not_dict(path)
    kind = block.get("type")
    if not isinstance(kind, str):
        raise bad_request(f"{path}: Unable to extract tag using discriminator 'type'")
    if kind not in allowed:
        raise bad_request(
            f"{path}: Input tag '{kind}' found using 'type' does not match any of the "
            f"expected tags: {tags(allowed)}"
        )
    cc = block.get("cache_control")
    if cc is not None:
        if kind in ("thinking", "redacted_thinking"):
            raise bad_request(f"{path}.{kind}.cache_control: Extra inputs are not permitted")
        check_cache_control(cc, f"{path}.cache_control")
    if kind == "text":
        text = require_str(block, "text", path)
        if blank(text):
            if cc is not None:
                raise bad_request(f"{path}.text: cache_control cannot be set for empty text blocks")
            if where == "messages":
                raise bad_request("messages: text content blocks must be non-empty")
    elif kind == "image":
        _check_image(block, path)
    elif kind == "document":
        _check_document(block, path)
    elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        require_str(block, "id", path)
        require_str(block, "name", path)
        if "input" not in block:
            raise bad_request(f"{path}.input: Field required")
        if not isinstance(block["input"], Mapping):
            raise bad_request(f"{path}.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        _check_tool_result(block, path)
    elif kind == "thinking":
        require_str(block, "thinking", path)
        require_str(block, "signature", path)
    elif kind == "redacted_thinking":
        require_str(block, "data", path)
    elif kind == "search_result":
        require_str(block, "source", path)
        require_str(block, "title", path)
        content = block.get("content")
        if not isinstance(content, list):
            raise bad_request(f"{path}.content: Input should be a valid list")
        for k, inner in enumerate(content):
            check_block(inner, f"{path}.content.{k}", allowed=("text",), where="messages")
    return kind


def _check_image(block: Mapping[str, Any], path: str) -> None:
    source = block.get("source")
    if source is None:
        raise bad_request(f"{path}.source: Field required")
    if not isinstance(source, Mapping):
        raise not_dict(f"{path}.source")
    kind = source.get("type")
    sp = f"{path}.source"
    if kind == "base64":
        media = source.get("media_type")
        if media not in _IMAGE_MEDIA:
            raise bad_request(f"{sp}.base64.media_type: Input should be {tags(_IMAGE_MEDIA)}")
        data = require_str(source, "data", f"{sp}.base64")
        raw = decode_base64(data)
        if raw is None:
            raise bad_request(f"{sp}.base64.data: invalid base64 data")
        info = image_dimensions(raw)
        if info is None:
            raise bad_request("Could not process image")
        if info.media_type != media:
            raise bad_request(
                f"{sp}.base64: The image was specified using the {media} media type, but the "
                f"image appears to be a {info.media_type} image"
            )
    elif kind == "url":
        require_str(source, "url", f"{sp}.url")
    elif kind == "file":
        require_str(source, "file_id", f"{sp}.file")
    else:
        raise bad_request(
            f"{sp}: Input tag '{kind}' found using 'type' does not match any of the expected "
            "tags: 'base64', 'file', 'url'"
        )


def _check_document(block: Mapping[str, Any], path: str) -> None:
    source = block.get("source")
    sp = f"{path}.source"
    if source is None:
        raise bad_request(f"{sp}: Field required")
    if not isinstance(source, Mapping):
        raise not_dict(sp)
    kind = source.get("type")
    if kind == "base64":
        data = require_str(source, "data", f"{sp}.base64")
        if source.get("media_type") not in ("application/pdf", "text/plain"):
            raise bad_request(f"{sp}.base64.media_type: Input should be 'application/pdf'")
        if decode_base64(data) is None:
            raise bad_request(f"{sp}.base64.data: invalid base64 data")
    elif kind == "text":
        require_str(source, "data", f"{sp}.text")
    elif kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return
        if not isinstance(content, list):
            raise bad_request(f"{sp}.content.content: Input should be a valid list")
        for k, inner in enumerate(content):
            check_block(
                inner, f"{sp}.content.content.{k}", allowed=_DOCUMENT_CONTENT, where="messages"
            )
    elif kind == "url":
        require_str(source, "url", f"{sp}.url")
    elif kind == "file":
        require_str(source, "file_id", f"{sp}.file")
    else:
        raise bad_request(
            f"{sp}: Input tag '{kind}' found using 'type' does not match any of the expected "
            "tags: 'base64', 'content', 'file', 'text', 'url'"
        )
    for key in ("title", "context"):
        if block.get(key) is not None and not isinstance(block[key], str):
            raise bad_request(f"{path}.{key}: Input should be a valid string")


def _check_tool_result(block: Mapping[str, Any], path: str) -> None:
    require_str(block, "tool_use_id", path)
    if block.get("is_error") is not None and not isinstance(block["is_error"], bool):
        raise bad_request(f"{path}.is_error: Input should be a valid boolean")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise bad_request(f"{path}.content: Input should be a valid string or a valid list")
    for k, inner in enumerate(content):
        kind = check_block(
            inner, f"{path}.content.{k}", allowed=_TOOL_RESULT_CONTENT, where="tool_result"
        )
        if kind == "tool_reference" and isinstance(inner, Mapping):
            require_str(inner, "tool_name", f"{path}.content.{k}")
