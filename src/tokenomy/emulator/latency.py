"""How long the emulated model takes: time to first token and output speed.

The model (documented in ``docs/emulator.md``)::

    ttft_ms     = base_ms + uncached_input_tokens × uncached_ms_per_token
                          + cache_read_tokens     × cached_ms_per_token
    output_ms   = output_tokens / output_tokens_per_s × 1000
    duration_ms = ttft_ms + output_ms

``uncached_input_tokens`` are the tokens the server had to process (plain input plus cache
writes); reading from the cache costs far less per token. The defaults are fitted to the
figures Anthropic published when prompt caching launched (a 100k-token prompt: 11.5 s
uncached, 2.4 s cached; 10k tokens: 1.6 s uncached) and a typical output speed.

Modes:

- ``off``: no latency at all (tests, gateway benchmarks). No headers.
- ``virtual``: nothing sleeps; the emulated duration is added to the emulator's clock and
  reported in the ``x-emulator-ttft-ms`` / ``x-emulator-duration-ms`` response headers, so a
  demo can report "emulated wall time" without waiting for it.
- ``real``: the server actually waits (times ``scale``): before the first byte, and between
  stream deltas at the output speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tokenomy.errors import ConfigError

__all__ = ["LatencyMode", "LatencyModel", "Timing"]

LatencyMode = Literal["off", "virtual", "real"]


@dataclass(frozen=True, slots=True)
class Timing:
    """The emulated timing of one response, in milliseconds."""

    ttft_ms: float
    output_ms: float

    @property
    def duration_ms(self) -> float:
        return self.ttft_ms + self.output_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyModel:
    """Time to first token grows with uncached input; output streams at a set speed."""

    mode: LatencyMode = "off"
    base_ms: float = 500.0
    uncached_ms_per_token: float = 0.11
    cached_ms_per_token: float = 0.02
    output_tokens_per_s: float = 60.0
    # real mode only: multiply every wait (0.1 = ten times faster than life)
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("off", "virtual", "real"):
            raise ConfigError(f"latency mode must be off, virtual or real, got {self.mode!r}")
        for name in ("base_ms", "uncached_ms_per_token", "cached_ms_per_token", "scale"):
            value = getattr(self, name)
            if not value >= 0:
                raise ConfigError(f"latency {name} must be ≥ 0, got {value!r}")
        if not self.output_tokens_per_s > 0:
            raise ConfigError(
                f"latency output_tokens_per_s must be > 0, got {self.output_tokens_per_s!r}"
            )

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def ttft_ms(self, *, uncached_input_tokens: int, cache_read_tokens: int) -> float:
        """Time to first token for a request with this input (mode-independent)."""
        return (
            self.base_ms
            + uncached_input_tokens * self.uncached_ms_per_token
            + cache_read_tokens * self.cached_ms_per_token
        )

    def output_ms(self, output_tokens: int) -> float:
        """Time to generate ``output_tokens`` after the first one arrived."""
        return output_tokens / self.output_tokens_per_s * 1000.0

    def timing(
        self,
        *,
        uncached_input_tokens: int,
        cache_read_tokens: int,
        output_tokens: int,
        extra_ttft_ms: float = 0.0,
    ) -> Timing:
        """The whole response's timing; ``extra_ttft_ms`` comes from a slow-first-token fault."""
        return Timing(
            ttft_ms=self.ttft_ms(
                uncached_input_tokens=uncached_input_tokens, cache_read_tokens=cache_read_tokens
            )
            + extra_ttft_ms,
            output_ms=self.output_ms(output_tokens),
        )
