"""Periodic line-to-line offsets in one channel (a detector or calibration fault)."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from satwatch.services.simulator.event import F32, EventContext, SimEvent
from satwatch.services.simulator.kinds.fault import Fault


class Striping(Fault):
    name = "striping"

    def duration(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(0.5, 2.0))

    def plan(
        self, rng: np.random.Generator, ctx: EventContext, ev_id: str, start: datetime, end: datetime, chan: str
    ) -> SimEvent:
        w, h = ctx.width, ctx.height
        y0 = int(rng.uniform(0, 0.6) * h)
        y1 = min(h, y0 + int(rng.uniform(0.2, 0.4) * h))
        period = int(rng.integers(3, 7))
        amp = float(rng.choice([-1, 1]) * rng.uniform(18, 35))
        desc = f"line striping in {chan}: every {period}th line offset by {amp:+.0f} grey levels"
        params = {"period": period, "amplitude": amp}
        return SimEvent(ev_id, self.name, start, end, (0, y0, w, y1), desc, ctx.satellite, (chan,), params)

    def apply(self, ev: SimEvent, counts: F32, channels: list[int], s: float) -> None:
        x0, y0, x1, y1 = ev.bbox
        rows = np.arange(y0, y1)
        # Stripe pitch scales with the frame so it survives shrinking to the study size.
        hit = rows[(np.floor((rows - y0) / s).astype(int) % int(ev.params["period"])) == 0]
        for c in channels:
            counts[c, hit, x0:x1] += ev.params["amplitude"]
