"""The emulator's clock: what "now" means for cache TTLs, batch timing and timestamps.

Two kinds, one interface:

- :class:`VirtualClock` starts at a fixed epoch and moves only when told to (``advance``): by a
  test through ``POST /_emulator/clock``, by the latency model in ``virtual`` mode, or by the
  batch auto-advance. Tests expire caches and finish batches without ever sleeping.
- :class:`RealClock` follows the machine's wall clock plus an offset that ``advance`` grows, so
  a demo running in real time can still jump ahead by five minutes to expire a cache.

Time is a float number of seconds since the Unix epoch; the server model receives it as
``now_s`` and reads no clock of its own.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime
from typing import Literal, Protocol

from tokenomy.errors import ConfigError

__all__ = [
    "VIRTUAL_EPOCH_S",
    "Clock",
    "ClockMode",
    "RealClock",
    "VirtualClock",
    "make_clock",
    "rfc3339",
]

ClockMode = Literal["virtual", "real"]

# 2026-01-01T00:00:00Z: a fixed start, so ids, timestamps and batch times repeat run after run.
VIRTUAL_EPOCH_S = 1_767_225_600.0


class Clock(Protocol):
    """What the emulator needs from a clock."""

    @property
    def mode(self) -> ClockMode: ...

    def now_s(self) -> float:
        """Seconds since the Unix epoch on the emulator's clock."""
        ...

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (≥ 0); returns the new ``now_s``."""
        ...

    def reset(self) -> None:
        """Back to the state the clock was created in."""
        ...


def _check_step(seconds: float) -> float:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise ConfigError(f"advance_s must be a number of seconds, got {seconds!r}")
    step = float(seconds)
    if not math.isfinite(step) or step < 0:
        raise ConfigError(f"advance_s must be a finite number ≥ 0, got {seconds!r}")
    return step


class VirtualClock:
    """A clock that moves only when advanced. Thread-safe."""

    def __init__(self, *, start_s: float = VIRTUAL_EPOCH_S) -> None:
        self._start_s = float(start_s)
        self._now_s = self._start_s
        self._lock = threading.Lock()

    @property
    def mode(self) -> ClockMode:
        return "virtual"

    def now_s(self) -> float:
        with self._lock:
            return self._now_s

    def advance(self, seconds: float) -> float:
        step = _check_step(seconds)
        with self._lock:
            self._now_s += step
            return self._now_s

    def reset(self) -> None:
        with self._lock:
            self._now_s = self._start_s


class RealClock:
    """The wall clock plus an offset that :meth:`advance` grows. Thread-safe."""

    def __init__(self) -> None:
        self._offset_s = 0.0
        self._lock = threading.Lock()

    @property
    def mode(self) -> ClockMode:
        return "real"

    def now_s(self) -> float:
        with self._lock:
            return time.time() + self._offset_s

    def advance(self, seconds: float) -> float:
        step = _check_step(seconds)
        with self._lock:
            self._offset_s += step
            return time.time() + self._offset_s

    def reset(self) -> None:
        with self._lock:
            self._offset_s = 0.0


def make_clock(mode: ClockMode, *, start_s: float = VIRTUAL_EPOCH_S) -> Clock:
    """A clock of the given mode (``start_s`` only matters for a virtual clock)."""
    if mode == "virtual":
        return VirtualClock(start_s=start_s)
    if mode == "real":
        return RealClock()
    raise ConfigError(f"clock must be 'virtual' or 'real', got {mode!r}")


def rfc3339(now_s: float) -> str:
    """``2026-01-01T00:00:00.000000Z``: how the API writes timestamps."""
    return datetime.fromtimestamp(now_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
