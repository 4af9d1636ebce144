"""``tokenomy gateway``: serve the Anthropic API through the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app
from tokenomy.config import load_settings
from tokenomy.errors import InputError


@app.command("gateway")
def gateway(
    *,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8787].")] = None,
    upstream: Annotated[
        str | None,
        typer.Option(help="Where calls go: the Anthropic API (default) or an emulator URL."),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="optimize (cache planning) or observe (meter only, change nothing)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="A config file (TOML, [tokenomy] table).")
    ] = None,
    upstream_api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="A file holding the upstream API key used for gateway keys (tk-…); "
            "default: TOKENOMY_UPSTREAM_API_KEY."
        ),
    ] = None,
    require_gateway_key: Annotated[
        bool, typer.Option(help="Refuse clients that do not present a gateway key (tk-…).")
    ] = False,
    upstream_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for upstream data before a 504.")
    ] = 600.0,
) -> None:
    """Serve an Anthropic-compatible gateway: point any client at it with ANTHROPIC_BASE_URL."""
    from tokenomy.gateway import build_gateway, serve  # heavy: only when serving

    if mode is not None and mode not in ("optimize", "observe"):
        raise InputError(f"--mode must be optimize or observe; got {mode!r}")
    settings = load_settings(
        flags={"gateway_host": host, "gateway_port": port, "upstream_url": upstream, "mode": mode},
        config_file=config,
    )
    key: str | None = None  # default: TOKENOMY_UPSTREAM_API_KEY, through the settings
    if upstream_api_key_file is not None:
        try:
            key = upstream_api_key_file.read_text("utf-8").strip()
        except OSError as exc:
            raise InputError(
                f"cannot read --upstream-api-key-file {str(upstream_api_key_file)!r}: "
                f"{exc.strerror}"
            ) from None
    gw = build_gateway(
        settings,
        upstream_api_key=key or None,
        require_gateway_key=require_gateway_key,
        upstream_timeout_s=upstream_timeout,
    )
    url = f"http://{settings.gateway_host}:{settings.gateway_port}"
    _render.line(
        f"tokenomy gateway on {url} → {settings.upstream_url} ({settings.mode}); "
        f"point a client at it with ANTHROPIC_BASE_URL={url}"
    )
    serve(gw, host=settings.gateway_host, port=settings.gateway_port)
