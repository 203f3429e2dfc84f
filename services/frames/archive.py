"""A directory archive of frames in KMA's file naming, indexed by observation time.

Files may sit flat or in any sub-folders (``2024/07/01/...``); one observation time is a complete frame
once every required channel is present. Windows are runs of consecutive frame times.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from satwatch.services.frames.frame import CHANNELS, Frame, parse_kma_filename, read_grey_png


@dataclass
class FrameFiles:
    """The channel files of one observation time."""

    time: datetime
    area: str
    paths: dict[str, Path] = field(default_factory=dict)

    def complete(self, channels: tuple[str, ...] = CHANNELS) -> bool:
        return all(c in self.paths for c in channels)


class Archive:
    """Read-only view of a KMA-named PNG archive."""

    def __init__(self, root: str | Path, satellite: str = "COMS-1", channels: tuple[str, ...] = CHANNELS) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"archive directory {self.root} does not exist")
        self.satellite = satellite
        self.channels = channels
        by_time: dict[datetime, FrameFiles] = {}
        for path in self.root.rglob("*.png"):
            name = parse_kma_filename(path.name)
            if name is None or name.channel not in channels:
                continue
            entry = by_time.setdefault(name.time, FrameFiles(name.time, name.area))
            entry.paths[name.channel] = path
        self._files = by_time
        self.times: list[datetime] = sorted(t for t, f in by_time.items() if f.complete(channels))
        self.incomplete: list[datetime] = sorted(t for t, f in by_time.items() if not f.complete(channels))

    def __len__(self) -> int:
        return len(self.times)

    def files(self, time: datetime) -> FrameFiles:
        return self._files[time]

    def times_between(self, start: datetime | None = None, end: datetime | None = None) -> list[datetime]:
        """Complete frame times with start <= t <= end, in order."""
        lo = 0 if start is None else bisect.bisect_left(self.times, start)
        hi = len(self.times) if end is None else bisect.bisect_right(self.times, end)
        return self.times[lo:hi]

    def load(self, time: datetime) -> Frame:
        """Read one complete frame as 8-bit grey planes in channel order."""
        files = self._files[time]
        planes = [read_grey_png(files.paths[c]) for c in self.channels]
        shapes = {p.shape for p in planes}
        if len(shapes) != 1:
            raise ValueError(f"channels of {time:%Y-%m-%d %H:%M} differ in size: {sorted(shapes)}")
        return Frame(self.satellite, time, self.channels, np.stack(planes))

    def frames(self, start: datetime | None = None, end: datetime | None = None) -> Iterator[Frame]:
        for t in self.times_between(start, end):
            yield self.load(t)

    def windows(self, size: int = 20, stride: int = 1) -> list[list[datetime]]:
        """Every run of ``size`` consecutive complete frame times, stepping by ``stride`` frames."""
        return [self.times[i : i + size] for i in range(0, len(self.times) - size + 1, stride)]
