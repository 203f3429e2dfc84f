"""One channel's counts offset by a constant: its level no longer agrees with the others."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from satwatch.services.simulator.event import F32, EventContext, SimEvent
from satwatch.services.simulator.kinds.fault import Fault


class CalibrationJump(Fault):
    name = "calibration_jump"

    def duration(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(1.0, 3.0))

    def plan(
        self, rng: np.random.Generator, ctx: EventContext, ev_id: str, start: datetime, end: datetime, chan: str
    ) -> SimEvent:
        offset = float(rng.choice([-1, 1]) * rng.uniform(15, 30))
        desc = f"calibration jump in {chan}: offset {offset:+.0f} grey levels"
        bbox = (0, 0, ctx.width, ctx.height)
        return SimEvent(ev_id, self.name, start, end, bbox, desc, ctx.satellite, (chan,), {"offset": offset})

    def apply(self, ev: SimEvent, counts: F32, channels: list[int], s: float) -> None:
        for c in channels:
            counts[c] += ev.params["offset"]
