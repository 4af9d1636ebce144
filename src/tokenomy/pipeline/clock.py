"""Clocks for the pipeline: the system clock, and one driven by hand (tests, the emulator)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

__all__ = ["ManualClock", "SystemClock"]


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
