"""Suite-wide guards.

- A kill switch: any socket connection to an address outside loopback fails the test, so no
  test can reach the real Anthropic API (or anything else off this machine).
- Isolation: every test gets its own data and config dirs, so nothing touches the user's state.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class RealNetworkError(RuntimeError):
    """Raised when a test tries to leave this machine."""


def _is_local(host: Any) -> bool:
    if not isinstance(host, str):
        return True
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0] if isinstance(address, tuple) else address
        if not _is_local(host):
            raise RealNetworkError(
                f"test tried to connect to {address!r}: tests never leave this machine "
                "(point the client at the emulator instead)"
            )


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(host, bytes):
        host = host.decode()
    if host is not None and not _is_local(host):
        raise RealNetworkError(f"test tried to resolve {host!r}: tests never leave this machine")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _kill_switch() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = _real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = _real_getaddrinfo


@pytest.fixture(autouse=True)
def _isolated_user_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Send every piece of user state to a temporary directory."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TOKENOMY_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("TOKENOMY_CONFIG", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "share"))
    monkeypatch.setenv("TOKENOMY_OFFLINE", "1")
    for var in (
        "TOKENOMY_DB",
        "TOKENOMY_MODELS_FILE",
        "TOKENOMY_UPSTREAM",
        "TOKENOMY_REDIS",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(autouse=True)
def _prefix_stability(request: pytest.FixtureRequest) -> Iterator[None]:
    """Multi-turn traffic recorded by a RecordingSink must only extend the cached prefix."""
    from tests.prefix_stability import breaks, take_active

    take_active()
    yield
    sinks = take_active()
    if request.node.get_closest_marker("prefix_break") is not None:
        return
    found = [b for sink in sinks for b in breaks(sink.calls)]
    assert not found, (
        "the cached prefix broke between turns (mark prefix_break if deliberate):\n"
        + "\n".join(found)
    )
