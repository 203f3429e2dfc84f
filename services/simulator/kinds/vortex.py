"""A typhoon-like vortex: spiral bands around a clear eye, drifting west-north-west for half a day."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.simulator.event import F32, EventContext, SimEvent
from satwatch.services.simulator.kinds.weather import Weather


class Vortex(Weather):
    name = "vortex"

    def duration(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(8.0, 14.0))

    def plan(
        self, rng: np.random.Generator, ctx: EventContext, ev_id: str, start: datetime, end: datetime, chan: str
    ) -> SimEvent:
        w, h, s = ctx.width, ctx.height, ctx.scale
        radius = float(rng.uniform(28, 45) * s)
        cx0 = float(rng.uniform(0.45, 0.85) * w)
        cy0 = float(rng.uniform(0.55, 0.85) * h)
        hours = (end - start).total_seconds() / 3600
        # Typhoon-like drift: west-north-west at 15-25 km/h.
        speed = rng.uniform(15, 25) * hours / ctx.km_per_px
        heading = rng.uniform(math.radians(100), math.radians(150))
        cx1, cy1 = cx0 + speed * math.sin(heading - math.pi), cy0 - speed * abs(math.cos(heading - math.pi))
        reach = 1.6 * radius
        region = [
            max(0, int(min(cx0, cx1) - reach)),
            max(0, int(min(cy0, cy1) - reach)),
            min(w, int(max(cx0, cx1) + reach) + 1),
            min(h, int(max(cy0, cy1) + reach) + 1),
        ]
        desc = f"typhoon-like vortex: spiral bands around a clear eye, radius ~{radius * ctx.km_per_px:.0f} km"
        params = {
            "track": [cx0, cy0, cx1, cy1],
            "region": region,
            "radius": radius,
            "arms": float(rng.uniform(2.5, 4.0)),
        }
        return SimEvent(ev_id, self.name, start, end, ctx.pad_box(region), desc, ctx.satellite, CHANNELS, params)

    def shape(self, ev: SimEvent, frac: float, xx: F32, yy: F32) -> tuple[F32, F32, F32]:
        cx0, cy0, cx1, cy1 = ev.params["track"]
        cx, cy = cx0 + (cx1 - cx0) * frac, cy0 + (cy1 - cy0) * frac
        radius = float(ev.params["radius"])
        ramp = 0.4 + 0.6 * min(1.0, frac / 0.2, (1 - frac) / 0.2)
        dx, dy = xx - cx, yy - cy
        r = np.sqrt(dx * dx + dy * dy) + 1e-3
        theta = np.arctan2(dy, dx)
        # Cyclonic (anticlockwise on the image, north up) logarithmic spiral bands.
        arms = 0.5 + 0.5 * np.cos(2 * (theta + ev.params["arms"] * np.log(r / radius)))
        core = np.exp(-((r / (0.45 * radius)) ** 2))
        bands = arms * np.exp(-r / radius) * (r > 0.3 * radius)
        cover = np.clip(ramp * (1.5 * core + 1.2 * bands), 0, 1).astype(np.float32)
        cold = (198.0 + 35.0 * np.clip(r / (1.6 * radius), 0, 1)).astype(np.float32)
        clear = (ramp * np.exp(-((r / (0.1 * radius)) ** 2))).astype(np.float32)
        return cover, cold, clear
