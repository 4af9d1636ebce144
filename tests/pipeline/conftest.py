"""An in-process emulator and a pipeline that shares its clock, for pipeline and client tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from tests.prefix_stability import RecordingSink
from tokenomy.client import AsyncAnthropic
from tokenomy.data import builtin_table
from tokenomy.emulator import EmulatorConfig, create_app
from tokenomy.pipeline import FollowClock, Pipeline, PipelineConfig


@dataclass
class Harness:
    app: Any
    pipeline: Pipeline
    sink: RecordingSink

    @property
    def emulator(self) -> Any:
        return self.app.state.emulator

    def advance(self, seconds: float) -> None:
        self.emulator.clock.advance(seconds)

    def client(self, *, optimize: bool | None = None, **kwargs: Any) -> AsyncAnthropic:
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=self.app), base_url="http://emulator"
        )
        return AsyncAnthropic(
            api_key="sk-ant-test-0000",
            base_url="http://emulator",
            http_client=http,
            pipeline=self.pipeline,
            optimize=optimize,
            max_retries=0,
            **kwargs,
        )


def make_harness(*, config: PipelineConfig | None = None, brain: str = "echo") -> Harness:
    app = create_app(EmulatorConfig(brain=brain))
    sink = RecordingSink()
    pipeline = Pipeline(
        table=builtin_table(),
        clock=FollowClock(app.state.emulator.clock.now_s),
        sink=sink,
        config=config or PipelineConfig(),
    )
    return Harness(app=app, pipeline=pipeline, sink=sink)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = make_harness()
    yield h
    h.emulator.close()
