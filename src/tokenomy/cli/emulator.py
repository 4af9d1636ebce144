"""``tokenomy emulator``: serve the offline Anthropic API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app
from tokenomy.errors import InputError

if TYPE_CHECKING:
    from tokenomy.emulator import LatencyMode

_LATENCY: dict[str, LatencyMode] = {
    "off": "off",
    "on": "real",
    "real": "real",
    "virtual": "virtual",
}


@app.command("emulator")
def emulator(
    *,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8788,
    brain: Annotated[
        str, typer.Option(help="Default brain: echo, facts, or a scenario file (.yaml/.json).")
    ] = "echo",
    faults: Annotated[
        Path | None, typer.Option(help="A fault plan (.yaml/.json); see docs/emulator.md.")
    ] = None,
    latency: Annotated[
        str, typer.Option(help="off, on (= real: actually wait), or virtual (advance the clock).")
    ] = "off",
    latency_scale: Annotated[
        float, typer.Option(help="Real latency only: multiply every wait (0.1 = 10× faster).")
    ] = 1.0,
    clock: Annotated[str, typer.Option(help="virtual (fixed start) or real (wall clock).")] = (
        "virtual"
    ),
    seed: Annotated[int, typer.Option(help="Seed for ids, faults and batch order.")] = 0,
    batch_seconds_per_request: Annotated[
        float, typer.Option(help="Emulated time each batch request takes.")
    ] = 0.01,
    batch_min_seconds: Annotated[float, typer.Option(help="Shortest batch, in seconds.")] = 10.0,
    batch_poll_advance: Annotated[
        float | None,
        typer.Option(help="Advance the clock this many seconds on each poll of a running batch."),
    ] = None,
    batch_max_bytes: Annotated[
        int, typer.Option(help="Largest batch-create body (the API's limit: 256 MiB).")
    ] = 256 * 1024 * 1024,  # the API's batch limit (BatchLimits().max_body_bytes)
) -> None:
    """Serve an offline Anthropic API: caching, billing, batches, faults (no API key needed)."""
    from tokenomy.emulator import (  # imported here: the CLI starts fast
        BatchLimits,
        BatchTiming,
        EmulatorConfig,
        LatencyModel,
        load_fault_plan,
        serve,
    )

    mode = _LATENCY.get(latency)
    if mode is None:
        raise InputError(f"--latency must be off, on, virtual or real; got {latency!r}")
    if clock not in ("virtual", "real"):
        raise InputError(f"--clock must be virtual or real; got {clock!r}")
    config = EmulatorConfig(
        seed=seed,
        brain=brain,
        faults=load_fault_plan(faults) if faults is not None else EmulatorConfig().faults,
        latency=LatencyModel(mode=mode, scale=latency_scale),
        clock="virtual" if clock == "virtual" else "real",
        batch_timing=BatchTiming(
            seconds_per_request=batch_seconds_per_request,
            min_seconds=batch_min_seconds,
            poll_advance_s=batch_poll_advance,
        ),
        batch_limits=BatchLimits(max_body_bytes=batch_max_bytes),
    )
    _render.line(
        f"tokenomy emulator on http://{host}:{port} "
        f"(brain {brain}, clock {clock}, latency {mode}); "
        f"point a client at it with ANTHROPIC_BASE_URL=http://{host}:{port}"
    )
    serve(config, host=host, port=port)
