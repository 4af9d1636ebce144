"""Fixtures: the emulator in-process and over real HTTP, with SDK clients bound to it.

- ``make_app(**config)``: a fresh app per call (closed at teardown); ``app``: the default one.
- ``client``: an ``httpx2.AsyncClient`` calling ``app`` in-process (ASGI).
- ``async_sdk``: ``anthropic.AsyncAnthropic`` over that client (no retries).
- ``server``: ``app`` served by uvicorn on an ephemeral loopback port; ``sdk``: a sync
  ``anthropic.Anthropic`` pointed at it (no retries); ``admin``: its admin endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from starlette.applications import Starlette

from tests.emulator.harness import TEST_KEY, Admin, EmulatorServer, asgi_client, emulator_of
from tokenomy.emulator import Emulator, EmulatorConfig, create_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_app() -> Iterator[Callable[..., Starlette]]:
    apps: list[Starlette] = []

    def make(**config: Any) -> Starlette:
        app = create_app(EmulatorConfig(**config))
        apps.append(app)
        return app

    yield make
    for app in apps:
        emulator_of(app).close()


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app()


@pytest.fixture
def emulator(app: Starlette) -> Emulator:
    return emulator_of(app)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    async with asgi_client(app) as http:
        yield http


@pytest.fixture
def async_sdk(client: httpx2.AsyncClient) -> anthropic.AsyncAnthropic:
    # The http client belongs to the `client` fixture, which closes it.
    return anthropic.AsyncAnthropic(
        api_key=TEST_KEY, base_url=str(client.base_url), http_client=client, max_retries=0
    )


@pytest.fixture
def server(app: Starlette) -> Iterator[EmulatorServer]:
    srv = EmulatorServer(app).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sdk(server: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=TEST_KEY, base_url=server.base_url, max_retries=0) as c:
        yield c


@pytest.fixture
def admin(server: EmulatorServer) -> Admin:
    return server.admin()
