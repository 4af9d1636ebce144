"""A small, deterministic JSON-schema instance generator.

The echo brain uses it to answer requests that demand JSON (``output_config.format``, e.g.
Claude Code's session-title request) and to fill tool inputs. It covers what tool and output
schemas use in practice: types (also as lists), ``properties``/``required``, ``enum``,
``const``, ``anyOf``/``oneOf``/``allOf``, ``items``, length and range bounds, local ``$ref``s,
common ``format``s. Every property of an object is filled, so the result validates whether or
not ``additionalProperties`` is false.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["sample_from_schema"]

_MAX_DEPTH = 12
_OPTIONAL_DEPTH = 4
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
}


def sample_from_schema(schema: Any, *, hint: str = "ok") -> Any:
    """A value that matches ``schema``; strings are taken from ``hint`` where they can be."""
    root = schema if isinstance(schema, Mapping) else {}
    return _sample(schema, hint=hint or "ok", root=root, depth=0)


def _resolve(ref: str, root: Mapping[str, Any]) -> Any:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for raw in ref.lstrip("#").strip("/").split("/"):
        if not raw:
            continue
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return {}
    return node


def _sample(schema: Any, *, hint: str, root: Mapping[str, Any], depth: int) -> Any:
    if schema is True or not isinstance(schema, Mapping):
        return hint
    if depth > _MAX_DEPTH:
        return None
    if isinstance(schema.get("$ref"), str):
        return _sample(_resolve(schema["$ref"], root), hint=hint, root=root, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            # Prefer a non-null option: a real model fills the field when it can.
            chosen = next(
                (o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")),
                options[0],
            )
            return _sample(chosen, hint=hint, root=root, depth=depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of:
        merged: dict[str, Any] = {}
        for part in all_of:
            if isinstance(part, Mapping):
                for k, v in part.items():
                    if k == "properties" and isinstance(v, Mapping):
                        merged.setdefault("properties", {}).update(v)
                    elif k == "required" and isinstance(v, list):
                        merged.setdefault("required", []).extend(v)
                    else:
                        merged.setdefault(k, v)
        return _sample(merged, hint=hint, root=root, depth=depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema:
            kind = "array"
        else:
            return hint
    if kind == "object":
        return _object(schema, hint=hint, root=root, depth=depth)
    if kind == "array":
        return _array(schema, hint=hint, root=root, depth=depth)
    if kind == "string":
        return _string(schema, hint=hint)
    if kind == "integer":
        return int(_number(schema, integer=True))
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return hint


def _object(schema: Mapping[str, Any], *, hint: str, root: Mapping[str, Any], depth: int) -> Any:
    props = schema.get("properties")
    raw_required = schema.get("required")
    required = (
        [r for r in raw_required if isinstance(r, str)] if isinstance(raw_required, list) else []
    )
    out: dict[str, Any] = {}
    if isinstance(props, Mapping):
        for name, sub in props.items():
            # Deep down (a recursive schema), fill only what is required, so the value ends.
            if depth < _OPTIONAL_DEPTH or name in required:
                out[str(name)] = _sample(sub, hint=hint, root=root, depth=depth + 1)
    for name in required:
        if name not in out:
            out[name] = hint
    return out


def _array(schema: Mapping[str, Any], *, hint: str, root: Mapping[str, Any], depth: int) -> Any:
    items = schema.get("items", {})
    low = schema.get("minItems", 1)
    high = schema.get("maxItems")
    n = low if isinstance(low, int) and not isinstance(low, bool) and low >= 1 else 1
    if isinstance(high, int) and not isinstance(high, bool):
        n = min(n, max(high, 0))
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list) and prefix:
        return [_sample(p, hint=hint, root=root, depth=depth + 1) for p in prefix]
    return [_sample(items, hint=hint, root=root, depth=depth + 1) for _ in range(n)]


def _string(schema: Mapping[str, Any], *, hint: str) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    text = hint
    low = schema.get("minLength")
    high = schema.get("maxLength")
    if isinstance(high, int) and not isinstance(high, bool) and high >= 0:
        text = text[:high]
    if isinstance(low, int) and not isinstance(low, bool) and len(text) < low:
        text = text + "x" * (low - len(text))
    return text


def _number(schema: Mapping[str, Any], *, integer: bool) -> float:
    value = 1.0
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(low, int | float) and not isinstance(low, bool):
        value = max(value, float(low) + (1 if "exclusiveMinimum" in schema else 0))
    if isinstance(high, int | float) and not isinstance(high, bool):
        value = min(value, float(high) - (1 if "exclusiveMaximum" in schema else 0))
    return float(int(value)) if integer else value
