"""Gateways over the emulator: in-process (ASGI all the way) and over real HTTP (uvicorn).

- ``GatewayHarness`` wires an emulator, a pipeline that follows the emulator's clock (and
  records into a ``RecordingSink``, so the suite-wide prefix-stability check applies) and a
  :class:`~tokenomy.gateway.Gateway` whose upstream is the emulator.
- ``make_gateway(mode=..., ...)`` builds one in-process; ``served_gateway`` serves the emulator
  and the gateway each on an ephemeral loopback port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from tests.emulator.harness import TEST_KEY, EmulatorServer
from tests.prefix_stability import RecordingSink
from tokenomy.data import builtin_table
from tokenomy.emulator import EmulatorConfig, create_app
from tokenomy.gateway import Budgets, Gateway, GatewayConfig
from tokenomy.pipeline import FollowClock, Pipeline, PipelineConfig
from tokenomy.upstream import HttpUpstream, LeanUpstream


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class GatewayHarness:
    emulator_app: Any
    gateway: Gateway
    sink: RecordingSink
    servers: list[EmulatorServer] = field(default_factory=list)

    @property
    def emulator(self) -> Any:
        return self.emulator_app.state.emulator

    @property
    def pipeline(self) -> Pipeline:
        return self.gateway.pipeline

    def http(self) -> httpx2.AsyncClient:
        """An async HTTP client calling the gateway in-process."""
        return httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=self.gateway), base_url="http://gateway"
        )

    def sdk(self, *, api_key: str = TEST_KEY, **kwargs: Any) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url="http://gateway",
            http_client=self.http(),
            max_retries=0,
            **kwargs,
        )


def build_harness(
    *,
    mode: str = "optimize",
    emulator_app: Any = None,
    budgets: Budgets | None = None,
    upstream_url: str | None = None,
    upstream_timeout_s: float = 600.0,
    **config: Any,
) -> GatewayHarness:
    """A gateway in front of an emulator (in-process unless ``upstream_url`` is given)."""
    app = emulator_app if emulator_app is not None else create_app(EmulatorConfig())
    sink = RecordingSink()
    pipeline = Pipeline(
        table=builtin_table(),
        clock=FollowClock(app.state.emulator.clock.now_s),
        sink=sink,
        config=PipelineConfig(optimize=mode == "optimize", source="gateway"),
    )
    if upstream_url is None:
        upstream = HttpUpstream(
            "http://emulator",
            transport=httpx.ASGITransport(app=app),
            timeout_s=upstream_timeout_s,
        )
    else:  # over real HTTP: the gateway's own upstream, as `tokenomy gateway` builds it
        upstream = LeanUpstream(upstream_url, timeout_s=upstream_timeout_s, connect_timeout_s=2)
    gateway = Gateway(
        pipeline=pipeline,
        upstream=upstream,
        config=GatewayConfig(mode="optimize" if mode == "optimize" else "observe", **config),
        budgets=budgets,
    )
    return GatewayHarness(emulator_app=app, gateway=gateway, sink=sink)


@pytest.fixture
async def make_gateway() -> AsyncIterator[Callable[..., GatewayHarness]]:
    made: list[GatewayHarness] = []

    def make(**kwargs: Any) -> GatewayHarness:
        h = build_harness(**kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.gateway.aclose()
        h.emulator.close()


@pytest.fixture
def gw(make_gateway: Callable[..., GatewayHarness]) -> GatewayHarness:
    return make_gateway()


@dataclass
class Served:
    """An emulator and a gateway in front of it, each on its own loopback port."""

    emulator: EmulatorServer
    gateway: EmulatorServer
    harness: GatewayHarness

    @property
    def url(self) -> str:
        return self.gateway.base_url

    @property
    def sink(self) -> RecordingSink:
        return self.harness.sink


@pytest.fixture
def serve_gateway() -> Iterator[Callable[..., Served]]:
    made: list[Served] = []

    def serve(
        *,
        emulator_config: EmulatorConfig | None = None,
        wrap: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Served:
        app = create_app(emulator_config or EmulatorConfig())
        emu = EmulatorServer(wrap(app) if wrap is not None else app).start()
        h = build_harness(emulator_app=app, upstream_url=emu.base_url, **kwargs)
        # EmulatorServer serves any ASGI app; its lifespan shutdown closes the gateway.
        gws = EmulatorServer(h.gateway).start()  # type: ignore[arg-type]
        s = Served(emulator=emu, gateway=gws, harness=h)
        made.append(s)
        return s

    yield serve
    for s in made:
        s.gateway.stop()
        s.emulator.stop()
        s.harness.emulator.close()
