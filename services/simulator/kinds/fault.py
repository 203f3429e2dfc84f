"""What every instrument fault shares: it changes counts after the scene is rendered, never the clouds."""

from __future__ import annotations

from satwatch.services.simulator.event import F32, SimEvent


class Fault:
    name = ""
    weather = False

    def shape(self, ev: SimEvent, frac: float, xx: F32, yy: F32) -> tuple[F32, F32, F32]:
        raise TypeError(f"{self.name} is an instrument fault: it changes counts, not clouds")
