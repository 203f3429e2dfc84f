"""What every weather kind shares: it shapes clouds (cover, cloud-top temperature, clear eye), never counts."""

from __future__ import annotations

from satwatch.services.simulator.event import F32, SimEvent


class Weather:
    name = ""
    weather = True

    def apply(self, ev: SimEvent, counts: F32, channels: list[int], s: float) -> None:
        raise TypeError(f"{self.name} is weather: it shapes clouds, it does not change counts")
