"""Gateway keys and their spend: a table in the ledger database, counters in SQL or Redis.

- :class:`KeyStore` keeps gateway keys in the ``gateway_keys`` table of the ledger's database
  (SQLite by default, PostgreSQL for a team): id, name, SHA-256 of the key, budget, spend.
  The table belongs to the gateway, is created on first use and is independent of the ledger's
  migration chain (see ``docs/design/gateway.md``).
- :class:`SqlBudgets` (single process, or several sharing PostgreSQL): each check reads the
  key's row; each call's cost is added with one atomic ``UPDATE … SET spent = spent + x``.
- :class:`RedisBudgets` (``TOKENOMY_REDIS``): the spend counter lives in Redis (``INCRBY``,
  atomic across processes), seeded from the table when missing; the table is still updated,
  off the request path, so spend survives a Redis restart. Key rows are cached for a few
  seconds, so a revocation takes effect within ``key_cache_s``.

Money is stored as integer pico-dollars (``*_pusd``), like the ledger.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from tokenomy.errors import ConfigError, InputError, LedgerError
from tokenomy.gateway.auth import GatewayKey, hash_key, new_gateway_key
from tokenomy.ledger.schema import UTCDateTime

__all__ = [
    "Budgets",
    "KeyStore",
    "RedisBudgets",
    "SqlBudgets",
    "gateway_keys",
    "to_pusd",
    "to_usd",
]

_PUSD = Decimal(10) ** 12

# The gateway's own metadata: not part of tokenomy.ledger.schema (see the module docstring).
_meta = MetaData()
gateway_keys = Table(
    "gateway_keys",
    _meta,
    Column("key_id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("budget_pusd", BigInteger, nullable=True),
    Column("spent_pusd", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)


def to_pusd(usd: Decimal) -> int:
    """USD to integer pico-dollars, rounding up (a budget never under-counts spend)."""
    return int((usd * _PUSD).to_integral_value(rounding=ROUND_CEILING))


def to_usd(pusd: int) -> Decimal:
    return Decimal(pusd) / _PUSD


def _row_key(row: Any) -> GatewayKey:
    return GatewayKey(
        key_id=row.key_id,
        name=row.name,
        budget_usd=None if row.budget_pusd is None else to_usd(row.budget_pusd),
        spent_usd=to_usd(row.spent_pusd),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class KeyStore:
    """Gateway keys in a database (sync; the gateway calls it from a worker thread)."""

    def __init__(self, engine: Engine, *, where: str = "ledger") -> None:
        self._engine = engine
        self._where = where
        self._ready = False

    def _ensure(self) -> None:
        if self._ready:
            return
        try:
            _meta.create_all(self._engine, checkfirst=True)
        except SQLAlchemyError:
            # Another process created it between the check and the CREATE: fine if it is there.
            try:
                with self._engine.connect() as conn:
                    conn.execute(select(gateway_keys.c.key_id).limit(1))
            except SQLAlchemyError as exc:
                raise LedgerError(
                    f"cannot create the gateway_keys table in {self._where!r}: {exc}"
                ) from None
        self._ready = True

    def create(
        self, name: str, *, budget_usd: Decimal | None, now: datetime
    ) -> tuple[GatewayKey, str]:
        """A new key: its record and the key itself (shown once, stored only as a hash)."""
        if budget_usd is not None and budget_usd < 0:
            raise InputError(f"a budget must be ≥ 0 USD, got {budget_usd}")
        self._ensure()
        key_id, secret = new_gateway_key()
        values = {
            "key_id": key_id,
            "key_hash": hash_key(secret),
            "name": name,
            "budget_pusd": None if budget_usd is None else to_pusd(budget_usd),
            "spent_pusd": 0,
            "created_at": now,
            "revoked_at": None,
        }
        with self._engine.begin() as conn:
            conn.execute(gateway_keys.insert(), values)
        return _row_key(_Row(values)), secret

    def list(self) -> list[GatewayKey]:
        self._ensure()
        with self._engine.connect() as conn:
            rows = conn.execute(select(gateway_keys).order_by(gateway_keys.c.created_at)).all()
        return [_row_key(r) for r in rows]

    def get(self, key_id: str) -> GatewayKey:
        self._ensure()
        with self._engine.connect() as conn:
            row = conn.execute(select(gateway_keys).where(gateway_keys.c.key_id == key_id)).first()
        if row is None:
            raise InputError(f"no gateway key {key_id!r}; see 'tokenomy keys list'")
        return _row_key(row)

    def lookup(self, secret: str) -> tuple[GatewayKey, int] | None:
        """The key record and its spend in pico-dollars, by the key itself; None if unknown."""
        self._ensure()
        with self._engine.connect() as conn:
            row = conn.execute(
                select(gateway_keys).where(gateway_keys.c.key_hash == hash_key(secret))
            ).first()
        return None if row is None else (_row_key(row), int(row.spent_pusd))

    def revoke(self, key_id: str, *, now: datetime) -> GatewayKey:
        self._set(key_id, revoked_at=now)
        return self.get(key_id)

    def set_budget(self, key_id: str, budget_usd: Decimal | None) -> GatewayKey:
        if budget_usd is not None and budget_usd < 0:
            raise InputError(f"a budget must be ≥ 0 USD, got {budget_usd}")
        self._set(key_id, budget_pusd=None if budget_usd is None else to_pusd(budget_usd))
        return self.get(key_id)

    def add_spend(self, key_id: str, pusd: int) -> None:
        """Add to a key's spend atomically (safe with several gateway processes)."""
        self._ensure()
        with self._engine.begin() as conn:
            conn.execute(
                update(gateway_keys)
                .where(gateway_keys.c.key_id == key_id)
                .values(spent_pusd=gateway_keys.c.spent_pusd + pusd)
            )

    def _set(self, key_id: str, **values: Any) -> None:
        self._ensure()
        with self._engine.begin() as conn:
            n = conn.execute(
                update(gateway_keys).where(gateway_keys.c.key_id == key_id).values(**values)
            ).rowcount
        if n == 0:
            raise InputError(f"no gateway key {key_id!r}; see 'tokenomy keys list'")


class _Row:
    """Attribute access over a dict (a freshly inserted row)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class Budgets(Protocol):
    """What the gateway asks about gateway keys: who is this, what have they spent."""

    async def lookup(self, secret: str) -> GatewayKey | None:
        """The key (``spent_usd`` current) or None for an unknown key."""
        ...

    async def add(self, key_id: str, cost_usd: Decimal) -> None: ...

    async def aclose(self) -> None: ...


class SqlBudgets:
    """Spend in the ``gateway_keys`` table: one indexed read per check, one UPDATE per call."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    async def lookup(self, secret: str) -> GatewayKey | None:
        found = await asyncio.to_thread(self.store.lookup, secret)
        return None if found is None else found[0]

    async def add(self, key_id: str, cost_usd: Decimal) -> None:
        await asyncio.to_thread(self.store.add_spend, key_id, to_pusd(cost_usd))

    async def aclose(self) -> None:
        return None


class RedisBudgets:
    """Spend counters in Redis, shared by every gateway process pointed at it."""

    def __init__(
        self, store: KeyStore, url: str, *, key_cache_s: float = 5.0, prefix: str = "tokenomy:"
    ) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:  # pragma: no cover - redis is a declared extra
            raise ConfigError(
                f"TOKENOMY_REDIS is set ({url!r}) but the redis package is missing; "
                "pip install 'tokenomy[redis]'"
            ) from None
        self.store = store
        self._redis: Any = aioredis.from_url(url)
        self._key_cache_s = key_cache_s
        self._prefix = prefix
        self._cache: dict[str, tuple[float, GatewayKey | None]] = {}

    def _counter(self, key_id: str) -> str:
        return f"{self._prefix}spend_pusd:{key_id}"

    async def lookup(self, secret: str) -> GatewayKey | None:
        h = hash_key(secret)
        now = time.monotonic()
        hit = self._cache.get(h)
        if hit is None or now - hit[0] > self._key_cache_s:
            found = await asyncio.to_thread(self.store.lookup, secret)
            if len(self._cache) > 10_000:
                self._cache.clear()
            hit = (now, None if found is None else found[0])
            self._cache[h] = hit
            if found is not None:
                # Seed the counter from the table the first time any process sees the key.
                await self._redis.set(self._counter(found[0].key_id), found[1], nx=True)
        key = hit[1]
        if key is None:
            return None
        raw = await self._redis.get(self._counter(key.key_id))
        return key if raw is None else replace(key, spent_usd=to_usd(int(raw)))

    async def add(self, key_id: str, cost_usd: Decimal) -> None:
        pusd = to_pusd(cost_usd)
        await self._redis.incrby(self._counter(key_id), pusd)
        await asyncio.to_thread(self.store.add_spend, key_id, pusd)

    async def aclose(self) -> None:
        await self._redis.aclose()


def now_utc() -> datetime:
    return datetime.now(UTC)
