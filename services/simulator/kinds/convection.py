"""Rapidly developing convection: a few cells growing to very cold cloud tops within a couple of hours."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from satwatch.services.simulator.event import F32, EventContext, SimEvent
from satwatch.services.simulator.kinds.weather import Weather


class Convection(Weather):
    name = "convection"

    def duration(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(1.5, 3.0))

    def plan(
        self, rng: np.random.Generator, ctx: EventContext, ev_id: str, start: datetime, end: datetime, chan: str
    ) -> SimEvent:
        w, h, s = ctx.width, ctx.height, ctx.scale
        size = int(rng.uniform(40, 70) * s)
        x0 = int(rng.uniform(0.1, 0.9) * (w - size))
        y0 = int(rng.uniform(0.3, 0.9) * (h - size))
        n_cells = int(rng.integers(3, 7))
        margin = 0.2 * size
        cells = [
            [
                float(rng.uniform(x0 + margin, x0 + size - margin)),
                float(rng.uniform(y0 + margin, y0 + size - margin)),
                float(rng.uniform(5, 11) * s),  # mature radius, px
                float(rng.uniform(0.0, 0.4)),  # onset as a fraction of the event
            ]
            for _ in range(n_cells)
        ]
        cells[0][3] = 0.0  # the first cell is there from the start
        region = [x0, y0, min(w, x0 + size), min(h, y0 + size)]
        desc = f"rapidly developing convection: {n_cells} cells growing to cloud tops near 195 K"
        channels = ("ir01", "ir02", "swir", "wv")
        params = {"cells": cells, "region": region}
        return SimEvent(ev_id, self.name, start, end, ctx.pad_box(region), desc, ctx.satellite, channels, params)

    def shape(self, ev: SimEvent, frac: float, xx: F32, yy: F32) -> tuple[F32, F32, F32]:
        cover = np.zeros(yy.shape, dtype=np.float32)
        cold = np.full(yy.shape, 300.0, dtype=np.float32)
        clear = np.zeros(yy.shape, dtype=np.float32)
        for cx, cy, rmax, onset in ev.params["cells"]:
            if frac < onset:
                continue
            age = (frac - onset) / (1 - onset)
            growth = 0.4 + 0.6 * min(1.0, age / 0.5)  # fast growth, then mature
            r = max(1.5, rmax * growth)
            g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)).astype(np.float32)
            cover = np.maximum(cover, np.clip(1.6 * g, 0, 1))
            top = 250.0 - 55.0 * growth  # cooling towards ~195 K as the cell deepens
            cold = np.minimum(cold, np.where(g > 0.05, top + 8.0 * (1 - g), 300.0))
        return cover, cold, clear
