"""Who may send what: the client's key, gateway keys, budgets, and the overshoot bound.

:class:`Admission` answers, before anything is sent upstream, whether a request goes ahead
(:class:`Refusal` when it does not: the API's status, error type and a message that says what
to do), and keeps the sum of what admitted requests on budgeted keys can still spend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from tokenomy.core.keys import fingerprint
from tokenomy.core.pricing import CostBreakdown
from tokenomy.core.records import CallRecord
from tokenomy.gateway.auth import ClientKey, GatewayKey, client_key, is_gateway_key, max_cost_usd
from tokenomy.gateway.budgets import Budgets
from tokenomy.gateway.metrics import GatewayMetrics
from tokenomy.pipeline import Prepared

__all__ = ["Admission", "Admitted", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error the gateway answers itself (the API's status and error type)."""

    status: int
    message: str
    error_type: str | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    """The client's key and, for a ``tk-…`` key, its record."""

    key: ClientKey
    gateway_key: GatewayKey | None = None


class Admission:
    """Keys and budgets, checked before sending."""

    def __init__(
        self,
        *,
        budgets: Budgets | None,
        upstream_api_key: str | None,
        require_gateway_key: bool,
        metrics: GatewayMetrics,
    ) -> None:
        self.budgets = budgets
        self._upstream_api_key = upstream_api_key
        self._require = require_gateway_key
        self._metrics = metrics
        self._in_flight_max = Decimal(0)

    async def admit(self, headers: Mapping[str, str]) -> Admitted | Refusal:
        key = client_key(headers)
        if key is None:
            return Refusal(
                401,
                "x-api-key header is required (or Authorization: Bearer); send your Anthropic "
                "API key or a tokenomy gateway key (tk-…)",
            )
        if not is_gateway_key(key.value):
            if self._require:
                return Refusal(
                    401,
                    "this gateway accepts only tokenomy gateway keys (tk-…); ask its operator "
                    "for one ('tokenomy keys create')",
                )
            return Admitted(key)
        if self.budgets is None:
            return Refusal(401, "gateway keys are not enabled on this gateway (no key store)")
        gk = await self.budgets.lookup(key.value)
        if gk is None:
            return Refusal(401, "invalid tokenomy gateway key")
        if gk.revoked:
            return Refusal(401, f"tokenomy gateway key {gk.key_id} was revoked")
        if not self._upstream_api_key:
            return Refusal(
                401,
                "this gateway has no upstream API key to use for gateway keys; start it with "
                "TOKENOMY_UPSTREAM_API_KEY set",
            )
        return Admitted(key, gk)

    def over_budget(self, gk: GatewayKey | None) -> Refusal | None:
        """A refusal when ``gk`` has spent its budget (the API's answer to a spend limit)."""
        if gk is None or not gk.over_budget():
            return None
        self._metrics.budget_rejections.inc()
        return Refusal(
            400,
            f"tokenomy gateway key {gk.key_id} ({gk.name}) has reached its budget of "
            f"${gk.budget_usd} (spent ${gk.spent_usd.quantize(Decimal('0.000001'))}); "
            f"raise it with 'tokenomy keys budget {gk.key_id} --usd N'",
        )

    def outgoing_auth(self, key: ClientKey) -> tuple[str, str]:
        """The header carrying the upstream key, in the style the client used."""
        upstream = self._upstream_api_key or ""
        if key.header == "x-api-key":
            return "x-api-key", upstream
        return "authorization", f"Bearer {upstream}"

    def attribute(self, p: Prepared, admitted: Admitted) -> Decimal | None:
        """Tie a prepared call to its gateway key; returns its cost bound while in flight."""
        gk = admitted.gateway_key
        if gk is None:
            return None
        # The ledger row carries the gateway key's fingerprint; the cache scope stays the
        # upstream key's (the server's cache is the upstream organisation's).
        p.api_key_fingerprint = fingerprint(admitted.key.value)
        estimate = p.anatomy.estimated.input_total if p.anatomy is not None else 0
        bound = max_cost_usd(p.model, input_tokens_estimate=estimate, request=p.request)
        p.decisions["gateway_key"] = {
            "key_id": gk.key_id,
            "budget_usd": None if gk.budget_usd is None else str(gk.budget_usd),
            "spent_usd_at_admission": str(gk.spent_usd),
            "max_cost_usd": None if bound is None else str(bound),
        }
        if bound is None or gk.budget_usd is None:
            return None
        self._in_flight_max += bound
        self._metrics.budget_in_flight_max.set(float(self._in_flight_max))
        return bound

    def charge(
        self, gk: GatewayKey | None, bound: Decimal | None, record: CallRecord | None
    ) -> Awaitable[None] | None:
        """Release a call's bound; returns the spend update to run (off the request path)."""
        if gk is None:
            return None
        if bound is not None:
            self._in_flight_max -= bound
            self._metrics.budget_in_flight_max.set(float(self._in_flight_max))
        if record is None or not isinstance(record.cost, CostBreakdown) or self.budgets is None:
            return None
        return self.budgets.add(gk.key_id, record.cost.total_usd)
