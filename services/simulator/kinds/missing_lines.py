"""Blocks of scan lines lost in transmission: counts of 0 in every channel."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.simulator.event import F32, EventContext, SimEvent
from satwatch.services.simulator.kinds.fault import Fault


class MissingLines(Fault):
    name = "missing_lines"

    def duration(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(0.25, 0.75))

    def plan(
        self, rng: np.random.Generator, ctx: EventContext, ev_id: str, start: datetime, end: datetime, chan: str
    ) -> SimEvent:
        w, h, s = ctx.width, ctx.height, ctx.scale
        n_blocks = int(rng.integers(1, 4))
        blocks = []
        for _ in range(n_blocks):
            y = int(rng.uniform(0, 0.95) * h)
            blocks.append([y, min(h, y + max(1, int(rng.integers(2, 8) * s)))])
        y0, y1 = min(b[0] for b in blocks), max(b[1] for b in blocks)
        desc = f"{n_blocks} block(s) of zeroed scan lines in every channel"
        return SimEvent(ev_id, self.name, start, end, (0, y0, w, y1), desc, ctx.satellite, CHANNELS, {"blocks": blocks})

    def apply(self, ev: SimEvent, counts: F32, channels: list[int], s: float) -> None:
        for a, b in ev.params["blocks"]:
            counts[:, a:b, :] = 0
