"""The emulator's configuration and its runtime state (one per app)."""

from __future__ import annotations

import collections
import functools
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.emulator.batches import BatchLimits, BatchStore, BatchTiming, Processor
from tokenomy.emulator.brains import Brain, builtin_brains, load_brain
from tokenomy.emulator.clock import VIRTUAL_EPOCH_S, Clock, ClockMode, make_clock
from tokenomy.emulator.faults import FaultInjector, FaultPlan
from tokenomy.emulator.ids import IdFactory
from tokenomy.emulator.latency import LatencyModel
from tokenomy.errors import ConfigError

if TYPE_CHECKING:
    from tokenomy.data.table import ModelTable
    from tokenomy.emulator.server import ServerModel

__all__ = ["MAX_BODY_BYTES", "Emulator", "EmulatorConfig"]

MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    """Everything an emulator can be told at start. All fields have defaults."""

    seed: int = 0
    # the default brain: a built-in name ("echo", "facts"), a name in `brains`, or a scenario file
    brain: str = "echo"
    # extra brains a request may pick with `x-tokenomy-brain: NAME`
    brains: Mapping[str, Brain] = field(default_factory=dict)
    faults: FaultPlan = field(default_factory=FaultPlan)
    latency: LatencyModel = field(default_factory=LatencyModel)
    clock: ClockMode = "virtual"
    clock_start_s: float = VIRTUAL_EPOCH_S
    max_body_bytes: int = MAX_BODY_BYTES
    batch_timing: BatchTiming = field(default_factory=BatchTiming)
    batch_limits: BatchLimits = field(default_factory=BatchLimits)
    # where batch bodies and results are spooled; None: a private temporary directory
    spool_dir: Path | None = None
    # the model table for the server model and /v1/models; None: the built-in table
    table: ModelTable | None = None
    # how many recent requests GET /_emulator/requests remembers
    request_log_size: int = 1000


class Emulator:
    """One emulator's moving parts: server model, clock, ids, faults, brains, batches, log."""

    def __init__(self, config: EmulatorConfig, *, server: ServerModel) -> None:
        from tokenomy.emulator.messages import process_batch_item

        self.config = config
        self.server = server
        self.table = server.table
        self.clock: Clock = make_clock(config.clock, start_s=config.clock_start_s)
        self.ids = IdFactory(seed=config.seed)
        self.faults = FaultInjector(config.faults)
        self.latency = config.latency
        self.brains: dict[str, Brain] = {**builtin_brains(), **config.brains}
        self.default_brain = load_brain(config.brain, known=self.brains)
        # A scenario loaded from a file becomes selectable by its name too.
        self.brains.setdefault(self.default_brain.name, self.default_brain)
        self._cleanup: Callable[[], object]
        if config.spool_dir is None:
            spool = Path(tempfile.mkdtemp(prefix="tokenomy-emulator-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, spool, ignore_errors=True)
        else:
            spool = config.spool_dir
            self._cleanup = weakref.finalize(self, _nothing)
        processor: Processor = functools.partial(process_batch_item, self)
        self.batches = BatchStore(
            processor=processor,
            ids=self.ids,
            timing=config.batch_timing,
            limits=config.batch_limits,
            spool_dir=spool,
            seed=config.seed,
        )
        self._log: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=max(1, config.request_log_size)
        )
        self._counters: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def brain(self, name: str | None) -> Brain:
        if name is None or name == "":
            return self.default_brain
        brain = self.brains.get(name)
        if brain is None:
            raise ConfigError(
                f"unknown brain {name!r}; this emulator has {', '.join(sorted(self.brains))}"
            )
        return brain

    def now_s(self) -> float:
        return self.clock.now_s()

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)
            self._counters[f"{entry.get('route')}:{entry.get('status')}"] += 1

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counters.items()))

    def reset(self) -> None:
        """Back to the start: empty caches, no batches, ids and fault counters from zero."""
        self.batches.reset()
        self.server.reset()
        self.clock.reset()
        self.ids.reset()
        self.faults.reset()
        with self._lock:
            self._log.clear()
            self._counters.clear()

    def close(self) -> None:
        """Drop batches and the spool directory (if the emulator made it)."""
        self.batches.reset()
        self._cleanup()


def _nothing() -> None:
    """A caller-owned spool directory is the caller's to remove."""
