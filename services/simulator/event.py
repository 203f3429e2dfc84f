"""A simulated event: the labelled record (:class:`SimEvent`) and what every kind of event provides
(:class:`EventKind`): how long it lasts, where it happens, and what it does to the frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from satwatch.services.frames.frame import CHANNELS

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SimEvent:
    """One labelled event. Active for frame times ``start <= t <= end``; ``bbox`` is ``[x0, y0, x1, y1)``."""

    id: str
    kind: str
    start: datetime
    end: datetime
    bbox: tuple[int, int, int, int]
    description: str
    satellite: str = "COMS-1"
    channels: tuple[str, ...] = CHANNELS
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def active(self, t: datetime) -> bool:
        return self.start <= t <= self.end

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "bbox": list(self.bbox),
            "satellite": self.satellite,
            "channels": list(self.channels),
            "description": self.description,
            "params": self.params,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SimEvent:
        b = d["bbox"]
        return cls(
            id=str(d["id"]),
            kind=str(d["kind"]),
            start=_parse_time(d["start"]),
            end=_parse_time(d["end"]),
            bbox=(int(b[0]), int(b[1]), int(b[2]), int(b[3])),
            description=str(d.get("description", "")),
            satellite=str(d.get("satellite", "COMS-1")),
            channels=tuple(d.get("channels", CHANNELS)),
            params=dict(d.get("params", {})),
        )


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(s: str) -> datetime:
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


@dataclass(frozen=True)
class EventContext:
    """What planning an event needs from the scene: frame size, length scale, satellite and geometry."""

    width: int
    height: int
    scale: float
    satellite: str
    km_per_px: float
    pad_box: Callable[[list[int]], tuple[int, int, int, int]]


class EventKind(Protocol):
    """One kind of simulated event. Weather kinds change the clouds (``shape``); faults change the counts
    (``apply``). ``duration`` and ``plan`` draw from the planner's generator in a fixed order, so a seed keeps
    giving the same events."""

    name: str
    weather: bool

    def duration(self, rng: np.random.Generator) -> float:
        """Hours the event lasts."""
        ...

    def plan(
        self, rng: np.random.Generator, ctx: EventContext, ev_id: str, start: datetime, end: datetime, chan: str
    ) -> SimEvent: ...

    def shape(self, ev: SimEvent, frac: float, xx: F32, yy: F32) -> tuple[F32, F32, F32]:
        """Weather kinds: (cloud cover, cloud-top temperature, clear eye) over the event's region."""
        ...

    def apply(self, ev: SimEvent, counts: F32, channels: list[int], s: float) -> None:
        """Fault kinds: change the counts in place."""
        ...
