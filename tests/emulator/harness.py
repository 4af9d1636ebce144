"""Reusable ways to run the emulator in tests: in-process (ASGI) or over real HTTP (uvicorn).

Importable from any test package (``from tests.emulator.harness import EmulatorServer``);
``tests/emulator/conftest.py`` wraps them in fixtures.

- :func:`asgi_client`: an ``httpx2.AsyncClient`` bound to an app in-process (no sockets).
- :class:`EmulatorServer`: uvicorn serving an app on an ephemeral 127.0.0.1 port in a
  background thread; ``base_url`` for any client (the sync SDK, a subprocess, Claude Code).
- :class:`Admin`: the ``/_emulator/*`` endpoints over a sync ``httpx2`` client.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import uvicorn
from starlette.applications import Starlette

from tokenomy.emulator import Emulator, EmulatorConfig, create_app

__all__ = [
    "TEST_KEY",
    "Admin",
    "EmulatorServer",
    "asgi_client",
    "emulator_of",
    "serve_app",
]

#: the API key tests send (its fingerprint is the cache scope; any non-empty key works)
TEST_KEY = "sk-ant-test-0000"


def emulator_of(app: Starlette) -> Emulator:
    """The runtime state behind an app from :func:`create_app`."""
    em: Emulator = app.state.emulator
    return em


def asgi_client(app: Starlette, *, base_url: str = "http://emulator.test") -> httpx2.AsyncClient:
    """An async HTTP client that calls ``app`` in-process."""
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=base_url)


class EmulatorServer:
    """uvicorn serving ``app`` on 127.0.0.1 (ephemeral port) in a daemon thread."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        # IPPROTO_TCP explicitly: asyncio turns Nagle off only on sockets that say they are
        # TCP, and with Nagle on every response waits ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            http="h11",
            ws="none",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def emulator(self) -> Emulator:
        return emulator_of(self.app)

    def start(self, *, timeout_s: float = 10.0) -> EmulatorServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:  # wait for startup, not for a timing assertion
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator's uvicorn server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def admin(self) -> Admin:
        return Admin(self.base_url)


@contextmanager
def serve_app(app: Starlette | None = None, **config: Any) -> Iterator[EmulatorServer]:
    """``with serve_app(brain="facts") as srv:`` — a running server, stopped afterwards."""
    server = EmulatorServer(app if app is not None else create_app(EmulatorConfig(**config)))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Admin:
    """The admin endpoints, for tests that drive a server over HTTP."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        with httpx2.Client(base_url=self.base_url) as http:
            r = http.request(method, path, json=body)
            r.raise_for_status()
            return r.json()

    def advance(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_emulator/clock", {"advance_s": seconds})
        return result

    def clock(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_emulator/clock")
        return result

    def reset(self) -> None:
        self._call("POST", "/_emulator/reset")

    def cache(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/_emulator/cache")["entries"]
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_emulator/stats")
        return result

    def faults(self, plan: dict[str, Any] | list[Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_emulator/faults", plan)
        return result

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/_emulator/requests")["requests"]
        return result
