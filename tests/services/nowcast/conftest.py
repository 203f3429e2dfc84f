"""A small simulated stream and its copy a day earlier: the copy is a perfect analog of every window."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from satwatch.services.frames.frame import Frame
from satwatch.services.nowcast.forecast import MemorySource
from satwatch.services.simulator.scene import SceneSimulator, SimConfig


@pytest.fixture(scope="session")
def stream() -> list[Frame]:
    """12 hours of a 120 x 96 simulated COMS-1 stream (48 frames)."""
    return list(SceneSimulator(SimConfig(seed=3, width=120, height=96, days=0.5)).frames())


@pytest.fixture(scope="session")
def day_before(stream: list[Frame]) -> MemorySource:
    """The same frames, a day earlier."""
    return MemorySource([replace(f, time=f.time - timedelta(days=1)) for f in stream])
