"""``tokenomy keys``: gateway keys (``tk-…``) with optional budgets."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated

import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app
from tokenomy.config import load_settings
from tokenomy.errors import InputError

if TYPE_CHECKING:
    from tokenomy.gateway.auth import GatewayKey
    from tokenomy.gateway.budgets import KeyStore

keys_app = typer.Typer(
    help="Gateway keys: give each person or agent a tk-… key with its own budget.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


def _store() -> KeyStore:
    from tokenomy.gateway import open_key_store  # heavy (SQLAlchemy): only when used

    return open_key_store(load_settings())


def _now() -> datetime:
    return datetime.now(UTC)


def _usd(value: str | None) -> Decimal | None:
    if value is None or value.lower() in ("none", "unlimited"):
        return None
    try:
        usd = Decimal(value)
    except InvalidOperation:
        raise InputError(f"a budget is a number of USD such as 50 or 12.5; got {value!r}") from None
    if not usd.is_finite() or usd < 0:
        raise InputError(f"a budget must be a finite number ≥ 0; got {value!r}")
    return usd


def _row(k: GatewayKey) -> dict[str, object]:
    return {
        "key_id": k.key_id,
        "name": k.name,
        "budget_usd": None if k.budget_usd is None else str(k.budget_usd),
        "spent_usd": str(k.spent_usd),
        "created_at": k.created_at.isoformat(),
        "revoked_at": None if k.revoked_at is None else k.revoked_at.isoformat(),
    }


@keys_app.command("create")
def create(
    *,
    name: Annotated[str, typer.Option(help="Who or what the key is for.")] = "default",
    budget_usd: Annotated[
        str | None, typer.Option(help="Spend limit in USD (default: none).")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a gateway key. The key is printed once and stored only as a hash."""
    store = _store()
    key, secret = store.create(name, budget_usd=_usd(budget_usd), now=_now())
    if json:
        _render.json_out({**_row(key), "key": secret})
        return
    budget = (
        "no budget" if key.budget_usd is None else f"budget {_render.usd(key.budget_usd, places=2)}"
    )
    _render.line(f"{secret}")
    _render.line(f"key {key.key_id} ({key.name}, {budget}): shown once, stored as a hash.")
    _render.line("Clients use it as their API key: ANTHROPIC_API_KEY=<key> against the gateway.")


@keys_app.command("list")
def list_keys(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List gateway keys with their budget and spend."""
    keys = _store().list()
    if json:
        _render.json_out([_row(k) for k in keys])
        return
    _render.table(
        None,
        ["key id", "name", "budget", "spent", "created", "status"],
        [
            [
                k.key_id,
                k.name,
                "-" if k.budget_usd is None else _render.usd(k.budget_usd, places=2),
                _render.usd(k.spent_usd),
                k.created_at.strftime("%Y-%m-%d %H:%M"),
                "revoked" if k.revoked else "active",
            ]
            for k in keys
        ],
        right=["budget", "spent"],
    )


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key id (tkid_…).")]) -> None:
    """Revoke a key: gateways refuse it within seconds."""
    key = _store().revoke(key_id, now=_now())
    _render.line(f"revoked {key.key_id} ({key.name})")


@keys_app.command("budget")
def budget(
    key_id: Annotated[str, typer.Argument(help="The key id (tkid_…).")],
    *,
    usd: Annotated[str, typer.Option(help="New budget in USD, or 'none'.")],
) -> None:
    """Set or clear a key's budget."""
    key = _store().set_budget(key_id, _usd(usd))
    shown = "no budget" if key.budget_usd is None else _render.usd(key.budget_usd, places=2)
    _render.line(f"{key.key_id} ({key.name}): {shown}, spent {_render.usd(key.spent_usd)}")
