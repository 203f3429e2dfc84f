"""A block of pixels pinned at the top count in one or all channels."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.simulator.event import F32, EventContext, SimEvent
from satwatch.services.simulator.kinds.fault import Fault


class SaturatedBlock(Fault):
    name = "saturated_block"

    def duration(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(0.25, 1.0))

    def plan(
        self, rng: np.random.Generator, ctx: EventContext, ev_id: str, start: datetime, end: datetime, chan: str
    ) -> SimEvent:
        w, h, s = ctx.width, ctx.height, ctx.scale
        bw, bh = int(rng.uniform(15, 45) * s), int(rng.uniform(10, 35) * s)
        x0, y0 = int(rng.uniform(0, w - bw)), int(rng.uniform(0, h - bh))
        chans = CHANNELS if rng.uniform() < 0.4 else (chan,)
        desc = f"saturated {bw}x{bh} block (255) in {', '.join(chans)}"
        return SimEvent(ev_id, self.name, start, end, (x0, y0, x0 + bw, y0 + bh), desc, ctx.satellite, chans, {})

    def apply(self, ev: SimEvent, counts: F32, channels: list[int], s: float) -> None:
        x0, y0, x1, y1 = ev.bbox
        for c in channels:
            counts[c, y0:y1, x0:x1] = 255
