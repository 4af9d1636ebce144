"""A job's input: JSONL lines read as a stream, each found again later by its byte span.

Two shapes of line (reference §3.1 for the first):

- ``{"custom_id": "...", "params": {...Messages create params...}}`` — the Message Batches
  format, sent as given (plus cache breakpoints);
- with a **template** (a request with ``{{field}}`` placeholders): each line is an item, a JSON
  object whose fields fill the placeholders (or any JSON value, which fills ``{{item}}``). The
  item's ``custom_id`` (or ``id``) names its result; without one, ``item-<line>``.

A placeholder that is a whole string (``"{{doc}}"``) takes the field's JSON value as is; one
inside a longer string is replaced by the field's text. Nothing else in the template changes.

Nothing here holds the file in memory: :func:`iter_lines` yields one line at a time with its
offset, and :func:`read_span` reads one line back when its chunk is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson
import yaml

from tokenomy.errors import InputError

__all__ = [
    "ParsedLine",
    "RawLine",
    "iter_lines",
    "load_template",
    "parse_line",
    "read_span",
    "render_template",
]

_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_WHOLE: Final = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}$")
_READ_BLOCK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class RawLine:
    """One non-blank line of the input: 1-based line number, byte offset and bytes."""

    line: int
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """A line turned into a request: the caller's custom_id and the Messages params."""

    custom_id: Any
    params: Any


class LineError(InputError):
    """A line that cannot be turned into a request (the message says why)."""


def iter_lines(fh: BinaryIO, *, offset: int = 0, first_line: int = 1) -> Iterator[RawLine]:
    """Every non-blank line of a binary stream, with its number and offset (bounded memory).

    ``offset`` / ``first_line``: where the stream is positioned (to go on from mid-file).
    """
    for number, raw in enumerate(fh, start=first_line):
        start = offset
        offset += len(raw)
        data = raw.rstrip(b"\r\n")
        if data.strip():
            yield RawLine(number, start, data)


def read_span(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    data = fh.read(length)
    if len(data) != length:
        raise InputError(
            f"the input file ended early (wanted {length} bytes at offset {offset}); "
            "it changed since the job was submitted"
        )
    return data


def load_template(path: Path) -> dict[str, Any]:
    """A request template from a JSON or YAML file."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise InputError(f"template file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read template file {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else orjson.loads(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"template {path}: not valid {path.suffix[1:] or 'JSON'}: {exc}") from None
    return check_template(data, where=str(path))


def check_template(data: Any, *, where: str = "template") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{where}: a template must be an object of Messages create params")
    # A template may be a whole batch line; its params are the template.
    if set(data) <= {"custom_id", "params"} and isinstance(data.get("params"), dict):
        data = data["params"]
    if "messages" not in data:
        raise InputError(f"{where}: the template has no 'messages'; it must be a whole request")
    return dict(data)


def render_template(template: Any, item: Any) -> Any:
    """Fill ``{{field}}`` placeholders of ``template`` from ``item`` (see the module doc)."""
    fields = item if isinstance(item, Mapping) else {"item": item}
    return _fill(template, fields)


def _lookup(fields: Mapping[str, Any], name: str) -> Any:
    value: Any = fields
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise LineError(f"the template's {{{{{name}}}}} has no value in this item")
        value = value[part]
    return value


def _fill(node: Any, fields: Mapping[str, Any]) -> Any:
    if isinstance(node, str):
        whole = _WHOLE.match(node)
        if whole:
            return _lookup(fields, whole.group(1))
        if "{{" not in node:
            return node
        return _PLACEHOLDER.sub(lambda m: _text(_lookup(fields, m.group(1))), node)
    if isinstance(node, list):
        return [_fill(v, fields) for v in node]
    if isinstance(node, dict):
        return {k: _fill(v, fields) for k, v in node.items()}
    return node


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def parse_line(raw: RawLine, *, template: Any | None) -> ParsedLine:
    """The request of one line; raises :class:`LineError` naming what is wrong."""
    try:
        data = orjson.loads(raw.data)
    except orjson.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.args[0] if exc.args else exc})") from None
    if template is None:
        if not isinstance(data, dict):
            raise LineError(
                'each line must be an object {"custom_id": ..., "params": {...}} '
                "(or pass --template to send plain items)"
            )
        extra = sorted(set(data) - {"custom_id", "params"})
        if extra:
            raise LineError(
                f"unexpected field {extra[0]!r}; a line holds only 'custom_id' and 'params' "
                "(or pass --template to send plain items)"
            )
        if "params" not in data:
            raise LineError("no 'params'; each line needs the Messages create params")
        return ParsedLine(custom_id=data.get("custom_id"), params=data["params"])
    custom_id: Any = f"item-{raw.line}"
    if isinstance(data, dict):
        for key in ("custom_id", "id"):
            if key in data:
                value = data[key]
                custom_id = str(value) if isinstance(value, int) else value
                break
    return ParsedLine(custom_id=custom_id, params=render_template(template, data))
