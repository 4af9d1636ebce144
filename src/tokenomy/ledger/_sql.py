"""SQL building blocks the ledger's read queries share (:mod:`tokenomy.ledger.queries`,
:mod:`tokenomy.ledger.usage_queries`): the sums over ``calls``, the time window, chunked id lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, and_, case, cast, func

from .schema import calls

__all__ = [
    "SUMS",
    "call_sums",
    "chunks",
    "chunks_or_all",
    "count_if",
    "has_exact",
    "in_window",
    "sum0",
]

_CHUNK = 500  # ids per IN (…) list: far below every backend's bind-parameter limit


def has_exact() -> Any:
    """The call has exact money strings: ``money_exact`` is neither SQL NULL nor JSON null.

    SQLAlchemy's JSON type stores Python None as the JSON text ``null`` (not SQL NULL), so
    ``IS NOT NULL`` alone is true for every call.
    """
    col = calls.c.money_exact
    return and_(col.is_not(None), cast(col, Text) != "null")


def sum0(col: Any) -> Any:
    """``SUM(col)``, 0 rather than NULL over no rows."""
    return func.coalesce(func.sum(col), 0)


def count_if(cond: Any) -> Any:
    return sum0(case((cond, 1), else_=0))


# What every grouping of calls sums (labels of call_sums, in order).
SUMS = (
    "calls",
    "error_calls",
    "unpriced_calls",
    "inexact_calls",
    "input_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "output_tokens",
    "cost_pusd",
)


def call_sums() -> list[Any]:
    """The :data:`SUMS` columns over ``calls`` in a GROUP BY: counts, tokens, cost."""
    c = calls.c
    return [
        func.count().label("calls"),
        count_if(c.status != "ok").label("error_calls"),
        count_if(c.unpriced_reason.is_not(None)).label("unpriced_calls"),
        count_if(has_exact()).label("inexact_calls"),
        sum0(c.input_tokens).label("input_tokens"),
        sum0(c.cache_write_5m_tokens).label("cache_write_5m_tokens"),
        sum0(c.cache_write_1h_tokens).label("cache_write_1h_tokens"),
        sum0(c.cache_read_tokens).label("cache_read_tokens"),
        sum0(c.output_tokens).label("output_tokens"),
        sum0(c.cost_total_pusd).label("cost_pusd"),
    ]


def in_window(stmt: Select[Any], col: Any, since: datetime | None, until: datetime | None) -> Any:
    """``stmt`` limited to ``since <= col < until`` (either bound may be None)."""
    if since is not None:
        stmt = stmt.where(col >= since)
    if until is not None:
        stmt = stmt.where(col < until)
    return stmt


def chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield list(ids[i : i + _CHUNK])


def chunks_or_all(ids: Sequence[str] | None) -> Iterable[list[str] | None]:
    """Chunks of ``ids``; one None (no filter: every run) when ``ids`` is None."""
    return chunks(list(ids)) if ids is not None else [None]
