"""A directory archive of one satellite's frames, in its profile's file naming, indexed by observation time.

Files may sit flat or in any sub-folders (KMA's ``YYYYMMDDHHMM_image/``, or ``2024/07/01/...``); one
observation time is a complete frame once every channel of the profile is present. Files the profile's
naming does not recognise are counted and reported, never skipped silently. Areas (sectors) are kept apart:
an archive holding several must be opened for one of them.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from satwatch.services.frames.frame import Frame, check_channel_sizes, load_plane
from satwatch.services.frames.profiles import SatelliteProfile, get_profile
from satwatch.services.frames.windows import frames_after, window_ending, windows_over

log = logging.getLogger(__name__)


def _files_under(root: Path) -> Iterator[Path]:
    """Every file below ``root`` (links to files and folders followed, as ``rglob`` and ``is_file`` do), from
    directory entries, which know their type without a stat per file: a month of frames is 11,520 files, and
    every command opens the archive."""
    stack = [str(root)]
    linked: set[str] = set()  # folders reached through links, so a link loop is walked once
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    if entry.is_symlink():
                        real = os.path.realpath(entry.path)
                        if real in linked:
                            continue
                        linked.add(real)
                    stack.append(entry.path)
                elif entry.is_file():
                    yield Path(entry.path)


class NoFramesError(FileNotFoundError):
    """An archive (or a time range of it) that holds no complete frame; the message says what was looked for."""


@dataclass
class FrameFiles:
    """The channel files of one observation time."""

    time: datetime
    area: str
    paths: dict[str, Path] = field(default_factory=dict)

    def complete(self, channels: tuple[str, ...]) -> bool:
        return all(c in self.paths for c in channels)


class Archive:
    """Read-only view of one satellite's image archive (one area)."""

    def __init__(self, root: str | Path, profile: SatelliteProfile | str = "COMS-1", area: str | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"archive directory {self.root} does not exist")
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.satellite = self.profile.name
        self.channels = self.profile.channels
        by_area: dict[str, dict[datetime, FrameFiles]] = {}
        self.unrecognised: list[Path] = []
        other_channels: dict[str, int] = {}
        suffix = "." + self.profile.image_format.lower()
        for path in sorted(_files_under(self.root)):
            name = self.profile.parse_filename(path.name)
            if name is not None and name.channel not in self.channels:
                # Named as the profile says, but a channel the detector does not read (COMS-1's vis).
                other_channels[name.channel] = other_channels.get(name.channel, 0) + 1
                continue
            if name is None:
                if path.suffix.lower() in (".png", ".gif", suffix):
                    self.unrecognised.append(path)
                continue
            entry = by_area.setdefault(name.area, {}).setdefault(name.time, FrameFiles(name.time, name.area))
            entry.paths[name.channel] = path
        if other_channels:
            log.info(
                "archive %s: %d image file(s) of channels outside %s's frames (%s; its frames are %s); ignored",
                self.root,
                sum(other_channels.values()),
                self.satellite,
                ", ".join(f"{c}: {n}" for c, n in sorted(other_channels.items())),
                ", ".join(self.channels),
            )
        if self.unrecognised:
            log.warning(
                "archive %s: %d image files do not follow %s's naming (%s), e.g. %s; they are ignored",
                self.root,
                len(self.unrecognised),
                self.satellite,
                self.profile.filename_template,
                self.unrecognised[0].name,
            )
        self.areas = sorted(by_area)
        area = area.lower() if area else None  # names are matched in lower case: --area EA040PS is ea040ps
        if area is None and len(self.areas) > 1:
            raise ValueError(f"archive {self.root} holds several areas {self.areas}; choose one (--area)")
        self.area = area if area is not None else (self.areas[0] if self.areas else self.profile.default_area)
        by_time = by_area.get(self.area, {})
        self._files = by_time
        self.times: list[datetime] = sorted(t for t, f in by_time.items() if f.complete(self.channels))
        self.incomplete: list[datetime] = sorted(t for t, f in by_time.items() if not f.complete(self.channels))

    def add(self, paths: dict[str, Path]) -> datetime | None:
        """Register one observation time's channel files, found without re-reading the folder (a claim check
        into a watched drop folder looks where the layout puts a new frame's files).

        Each path must be a file this archive would have indexed: named in the profile's naming, of this
        archive's area, of one of its channels, all of one time. Returns the time, now a
        complete frame, or None (nothing registered) when the files are not a complete frame of this archive.
        """
        time: datetime | None = None
        found: dict[str, Path] = {}
        for path in paths.values():
            name = self.profile.parse_filename(path.name)
            if name is None or name.area != self.area or name.channel not in self.channels:
                return None
            if (time is not None and name.time != time) or not path.is_file():
                return None
            time = name.time
            found[name.channel] = path
        if time is None or not all(c in found for c in self.channels):
            return None
        self._files[time] = FrameFiles(time, self.area, found)
        if time not in self.times:
            bisect.insort(self.times, time)
        if time in self.incomplete:
            self.incomplete.remove(time)
        return time

    def __len__(self) -> int:
        return len(self.times)

    def require_frames(self) -> None:
        """Raise NoFramesError, saying what was looked for, when the archive holds no complete frame."""
        if self.times:
            return
        raise NoFramesError(
            f"no complete {self.satellite} frame under {self.root}: looked for files named like "
            f"{self.profile.filename_template} with channels {', '.join(self.channels)}"
            + (f"; {len(self.unrecognised)} image files did not match" if self.unrecognised else "")
            + (f"; {len(self.incomplete)} times lack a channel" if self.incomplete else "")
        )

    def files(self, time: datetime) -> FrameFiles:
        return self._files[time]

    def times_between(self, start: datetime | None = None, end: datetime | None = None) -> list[datetime]:
        """Complete frame times with start <= t <= end, in order."""
        lo = 0 if start is None else bisect.bisect_left(self.times, start)
        hi = len(self.times) if end is None else bisect.bisect_right(self.times, end)
        return self.times[lo:hi]

    def load(self, time: datetime) -> Frame:
        """One complete frame, shrunk by the profile's preprocessing (files already at the shrunk size pass)."""
        files = self._files[time]
        check_channel_sizes({c: files.paths[c] for c in self.channels}, self.profile)  # ChannelSizeError
        planes = [load_plane(files.paths[c], self.profile) for c in self.channels]
        shapes = {p.shape for p in planes}
        if len(shapes) != 1:
            raise ValueError(f"channels of {time:%Y-%m-%d %H:%M} differ in size: {sorted(shapes)}")
        return Frame(self.satellite, time, self.channels, np.stack(planes), area=self.area)

    def frames(self, start: datetime | None = None, end: datetime | None = None) -> Iterator[Frame]:
        for t in self.times_between(start, end):
            yield self.load(t)

    def window(self, end: datetime, frames: int | None = None) -> list[datetime]:
        """The window ending at ``end`` by the one window rule (services.frames.windows)."""
        return window_ending(self.times, end, frames or self.profile.window_frames, self.profile.window_span)

    def following(self, end: datetime, horizon: timedelta) -> list[datetime]:
        """The frame times in (end, end + horizon]: what came after the window ending at ``end``."""
        return frames_after(self.times, end, horizon)

    def windows(
        self, frames: int | None = None, stride: int = 1, min_frames: int | None = None
    ) -> list[list[datetime]]:
        """Every window the rule allows, ending at every ``stride``-th frame (full ones unless min_frames)."""
        n = frames or self.profile.window_frames
        return windows_over(self.times, n, self.profile.window_span, min_frames, stride)
