"""Instrument faults the simulator injects, each a small class: striping, missing lines, a saturated block and
a calibration jump. They change counts after the scene is rendered, so they never look like weather."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.simulator.event import F32, EventContext, SimEvent


class _Fault:
    name = ""
    weather = False

    def shape(self, ev: SimEvent, frac: float, xx: F32, yy: F32) -> tuple[F32, F32, F32]:
        raise TypeError(f"{self.name} is an instrument fault: it changes counts, not clouds")


class Striping(_Fault):
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


class MissingLines(_Fault):
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


class SaturatedBlock(_Fault):
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


class CalibrationJump(_Fault):
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
