"""What every nowcast method takes and returns, and the frames it reads, so methods are interchangeable."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np

from satwatch.services.frames.frame import Frame, shrink


class FrameSource(Protocol):
    """A satellite's frames by time: an :class:`~satwatch.services.frames.archive.Archive` is one, and so is
    :class:`MemorySource` (the simulator's stream, the detector's frames in memory)."""

    satellite: str
    times: list[datetime]

    def load(self, time: datetime) -> Frame: ...


class MemorySource:
    """Frames held in memory, sorted by time; ``load`` raises KeyError for a time it does not hold."""

    def __init__(self, frames: Sequence[Frame]) -> None:
        if not frames:
            raise ValueError("a frame source needs at least one frame")
        self._frames = {f.time: f for f in frames}
        self.times = sorted(self._frames)
        self.satellite = frames[0].satellite
        self.channels = frames[0].channels

    def load(self, time: datetime) -> Frame:
        return self._frames[time]


class CachedSource:
    """A source whose frames are shrunk once and kept (least recently used out past ``max_frames``): a
    nowcast reads the same frames again and again (window, analogs' followers, verification), and a real
    archive frame costs four full-size PNG decodes."""

    def __init__(self, source: FrameSource, max_frames: int = 256) -> None:
        self.source = source
        self.satellite = source.satellite
        self.times = source.times
        self._max = max_frames
        self._kept: OrderedDict[datetime, Frame] = OrderedDict()

    def load(self, time: datetime) -> Frame:
        hit = self._kept.get(time)
        if hit is None:
            hit = self._kept[time] = shrink(self.source.load(time))
            if len(self._kept) > self._max:
                self._kept.popitem(last=False)
        else:
            self._kept.move_to_end(time)
        return hit


def load_shrunk(source: FrameSource, time: datetime) -> np.ndarray:
    """The frame at ``time`` at the study size as (C, H, W) uint8: native archives are shrunk on read."""
    return shrink(source.load(time)).data


@dataclass(frozen=True)
class Analog:
    """A similar past window: where it ended and how similar it is (exact ground-truth similarity in [0, 1])."""

    end: datetime
    similarity: float
    start: datetime | None = None


@dataclass
class NowcastInput:
    """What a method sees at issue time: the recent frames (oldest first, the last one is 'now'), the lead
    times asked for, and, for analog methods, the similar past windows and the source holding what followed
    them. ``cadence`` is the satellite's nominal frame interval (motion is measured per cadence step)."""

    times: list[datetime]
    frames: np.ndarray  # (T, C, H, W) uint8
    channels: tuple[str, ...]
    leads: tuple[timedelta, ...]
    cadence: timedelta
    analogs: tuple[Analog, ...] = ()
    past: FrameSource | None = None

    @property
    def issued(self) -> datetime:
        return self.times[-1]


@dataclass
class Forecast:
    """One method's forecast: ``fields[i]`` (C, H, W) float32 grey levels for ``leads[i]``, NaN where the
    method has nothing to say (an analog method with no analog frame at that lead)."""

    method: str
    issued: datetime
    leads: tuple[timedelta, ...]
    fields: np.ndarray  # (L, C, H, W) float32
    notes: dict[str, object] = field(default_factory=dict)

    def at(self, lead: timedelta) -> np.ndarray:
        return self.fields[self.leads.index(lead)]


class NowcastMethod(Protocol):
    """A nowcast method: the registry's unit (``interface.get_method``)."""

    def __call__(self, data: NowcastInput) -> Forecast: ...


def lead_times(hours: float, cadence: timedelta) -> tuple[timedelta, ...]:
    """Every cadence step from one cadence to ``hours`` (15 min .. 3 h for COMS at hours=3)."""
    if hours <= 0 or cadence <= timedelta(0):
        raise ValueError("hours and cadence must be positive")
    n = int(timedelta(hours=hours) / cadence)
    if n < 1:
        raise ValueError(f"{hours} h is shorter than one frame interval ({cadence})")
    return tuple(cadence * (i + 1) for i in range(n))
