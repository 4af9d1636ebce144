"""API keys at the gateway: the client's key, tokenomy gateway keys, and a call's cost bound.

- A client's own Anthropic key (``x-api-key`` or ``Authorization: Bearer``) goes upstream
  untouched; the gateway keeps only its fingerprint.
- A *gateway key* (``tk-…``, made by ``tokenomy keys create``) is a tokenomy identity with an
  optional budget. The client sends it where it would send its API key; the gateway checks it
  (stored as a SHA-256 hash, never in clear), checks its budget, and sends the gateway's own
  upstream key instead (``TOKENOMY_UPSTREAM_API_KEY``; held in memory only).
- :func:`max_cost_usd` is the most one request can cost: what a budget can be overshot by, per
  request already in flight when the budget runs out.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from tokenomy.data.table import ModelInfo

__all__ = [
    "GATEWAY_KEY_PREFIX",
    "AuthHeader",
    "ClientKey",
    "GatewayKey",
    "client_key",
    "hash_key",
    "is_gateway_key",
    "max_cost_usd",
    "new_gateway_key",
]

GATEWAY_KEY_PREFIX = "tk-"
AuthHeader = Literal["x-api-key", "authorization"]
_PER_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class ClientKey:
    """The key a client sent and the header it came in (the upstream gets the same style)."""

    value: str
    header: AuthHeader

    def __repr__(self) -> str:  # never print a key
        return f"ClientKey(header={self.header!r})"


def client_key(headers: Mapping[str, str]) -> ClientKey | None:
    """The client's key: ``x-api-key`` first, else ``Authorization: Bearer …``."""
    key = headers.get("x-api-key")
    if key:
        return ClientKey(key, "x-api-key")
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return ClientKey(auth[7:].strip(), "authorization")
    return None


def is_gateway_key(key: str) -> bool:
    return key.startswith(GATEWAY_KEY_PREFIX)


def hash_key(key: str) -> str:
    """How a gateway key is stored: SHA-256, hex. A lookup hashes the presented key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_gateway_key() -> tuple[str, str]:
    """A new ``(key_id, key)``. ``key_id`` is public (``tkid_…``); ``key`` is shown once."""
    key_id = "tkid_" + secrets.token_hex(6)
    return key_id, GATEWAY_KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """A gateway key's public record (its secret is never kept, only its hash)."""

    key_id: str
    name: str
    budget_usd: Decimal | None
    spent_usd: Decimal
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def over_budget(self, spent_usd: Decimal | None = None) -> bool:
        spent = self.spent_usd if spent_usd is None else spent_usd
        return self.budget_usd is not None and spent >= self.budget_usd


def max_cost_usd(
    model: ModelInfo | None,
    *,
    input_tokens_estimate: int,
    request: Mapping[str, Any] | None,
) -> Decimal | None:
    """An upper bound on one request's cost; None when its model has no price.

    Every input token at the dearest input-side rate (a 1-hour cache write, or twice the
    long-context/fast input price), 25% over the local token estimate, plus ``max_tokens`` at
    the dearest output rate, plus the US-only surcharge. Server tools are not bounded here.
    """
    if model is None or model.prices is None:
        return None
    p = model.prices
    in_rate = p.cache_write_1h
    out_rate = p.output
    for alt in (model.long_context, model.fast):
        if alt is not None:
            in_rate = max(in_rate, alt.input * 2)
            out_rate = max(out_rate, alt.output)
    max_tokens = request.get("max_tokens") if request is not None else None
    out_tokens = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 0
    in_tokens = (input_tokens_estimate * 5 + 3) // 4
    usd = (in_rate * in_tokens + out_rate * out_tokens) / _PER_MILLION
    return usd * Decimal("1.1")
