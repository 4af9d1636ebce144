"""API key fingerprints: the only form in which a key is ever kept."""

from __future__ import annotations

from hashlib import sha256

__all__ = ["fingerprint"]


def fingerprint(key: str | None) -> str | None:
    """A short, stable, non-reversible id for an API key (``fp_`` + 12 hex digits)."""
    if not key:
        return None
    return "fp_" + sha256(key.encode("utf-8")).hexdigest()[:12]
