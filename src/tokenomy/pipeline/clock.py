"""Clocks for the pipeline: the system clock, and one driven by hand (tests, the emulator)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["FollowClock", "ManualClock", "SystemClock"]


class SystemClock:
    """Wall time for records, a monotonic reading for latencies and cache TTLs."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic_s(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to: deterministic tests and emulated time."""

    def __init__(self, *, start: datetime | None = None, start_s: float = 0.0) -> None:
        self._epoch = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._s = start_s

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self._s)

    def monotonic_s(self) -> float:
        return self._s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._s += seconds

    def set(self, seconds: float) -> None:
        self._s = seconds


class FollowClock:
    """A clock that follows another one given as seconds since the Unix epoch.

    The pipeline's cache predictions must run on the server's time: against the emulator's
    virtual clock, ``FollowClock(emulator.clock.now_s)`` keeps both in step.
    """

    def __init__(self, now_s: Callable[[], float]) -> None:
        self._now_s = now_s

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now_s(), UTC)

    def monotonic_s(self) -> float:
        return self._now_s()
