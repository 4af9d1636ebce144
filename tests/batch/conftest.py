"""Batch jobs against the emulator: in-process (ASGI) for the runner, real HTTP for the CLI.

- ``make_env(**timing)``: a :class:`BatchEnv` on a fresh emulator (in-process), a SQLite ledger
  in the test's data dir, and a runner that never sleeps (the emulator's clock is virtual and
  each poll of a running batch advances it, so batches end without waiting).
- ``write_job(path, n, ...)``: a JSONL job whose requests share a long system prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from tests.emulator.harness import emulator_of
from tokenomy.batch import BatchEnv, PollPolicy
from tokenomy.config import Settings, load_settings
from tokenomy.emulator import BatchTiming, Emulator, EmulatorConfig, create_app

MODEL = "claude-sonnet-4-6"
KEY = "sk-ant-test-batch-0000"
# ~4,000 tokens on the emulator's tokenizer: over every model's minimum cacheable length.
SHARED = " ".join(f"clause{i % 89} of the shared policy text" for i in range(800))


def request(i: int, *, system: str = SHARED, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 32,
        "system": system,
        "messages": [{"role": "user", "content": f"item {i}: classify this ticket"}],
    }
    params.update(extra)
    return params


def write_job(path: Path, n: int, *, start: int = 0, **extra: Any) -> Path:
    with path.open("wb") as fh:
        for i in range(start, start + n):
            fh.write(orjson.dumps({"custom_id": f"q{i}", "params": request(i, **extra)}))
            fh.write(b"\n")
    return path


async def no_sleep(_s: float) -> None:
    return None


@dataclass
class Rig:
    env: BatchEnv
    app: Starlette

    @property
    def emulator(self) -> Emulator:
        return emulator_of(self.app)

    def batches(self) -> list[Any]:
        """The emulator's batches, oldest first."""
        store = self.emulator.batches
        return sorted(store._batches.values(), key=lambda b: b.seq)

    def custom_ids(self) -> list[list[str]]:
        return [list(b.custom_ids) for b in self.batches()]


def settings_for(data_dir: Path, upstream: str = "http://emulator.test") -> Settings:
    return load_settings(
        flags={"data_dir": str(data_dir), "upstream_url": upstream, "offline": True},
        environ={},
    )


@pytest.fixture
def make_env(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(*, poll: PollPolicy | None = None, **timing: Any) -> Rig:
        timing.setdefault("poll_advance_s", 600.0)
        app = create_app(EmulatorConfig(batch_timing=BatchTiming(**timing)))
        env = BatchEnv(
            settings_for(tmp_path / f"data{len(rigs)}"),
            transport=httpx.ASGITransport(app=app),
            poll=poll or PollPolicy(initial_s=0.0, max_s=0.0, reconcile_settle_s=0.0),
            sleep=no_sleep,
        )
        rig = Rig(env=env, app=app)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.env.close()
        emulator_of(rig.app).close()


@pytest.fixture
def rig(make_env: Callable[..., Rig]) -> Rig:
    return make_env()
