"""The doctor's report for a recorded run: every cache miss, its cause and its cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tokenomy.errors import InputError
from tokenomy.ledger import Ledger
from tokenomy.ledger.queries import get_run, list_runs, run_calls

__all__ = ["doctor_report"]


def doctor_report(ledger: Ledger, *, run_id: str | None = None) -> dict[str, Any]:
    """Misses of ``run_id`` (default: the most recent run) from the decisions in the ledger."""
    if run_id is None:
        recent = list_runs(ledger, limit=1)
        if not recent:
            raise InputError(
                f"no runs in the ledger at {ledger.display} yet; send calls through tokenomy first"
            )
        summary = recent[0]
    else:
        found = get_run(ledger, run_id)
        if found is None:
            raise InputError(f"no run {run_id!r} in the ledger; 'tokenomy report --all' lists them")
        summary = found
    calls = run_calls(ledger, summary.run_id)
    rows: list[dict[str, Any]] = []
    volatile: dict[str, int] = {}
    agree = checked = 0
    lost = Decimal(0)
    for call in calls:
        doc = call.decisions.get("doctor") if isinstance(call.decisions, dict) else None
        if not isinstance(doc, dict):
            continue
        if doc.get("agree") is not None:
            checked += 1
            agree += int(bool(doc["agree"]))
        for v in doc.get("volatile", []):
            where = v.split(" (", 1)[0].rsplit(" '", 1)[0]  # "system[0]: timestamp"
            volatile[where] = volatile.get(where, 0) + 1
        for miss in doc.get("misses", []):
            usd = Decimal(str(miss.get("lost_usd", "0")))
            lost += usd
            div = doc.get("divergence") or {}
            detail = miss.get("detail", "")
            if div and div.get("ref") and div.get("ref") not in detail:
                detail = f"{div.get('ref')}: {detail}"
            rows.append(
                {
                    "seq": call.seq,
                    "call_id": call.call_id,
                    "cause": miss.get("cause"),
                    "tokens": int(miss.get("tokens", 0)),
                    "lost_usd": usd,
                    "detail": detail,
                }
            )
    return {
        "run_id": summary.run_id,
        "name": summary.name,
        "calls": len(calls),
        "misses": len(rows),
        "lost_usd": lost,
        "agree": agree,
        "checked": checked,
        "rows": rows,
        "volatile": [f"{where} (on {n} of {len(calls)} calls)" for where, n in volatile.items()],
    }
