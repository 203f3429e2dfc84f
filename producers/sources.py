"""Frame sources: a directory being filled live, an archive replayed at a speed factor, the simulator."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np

from satwatch.producers.publisher import Rejected, SourceItem
from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import ChannelSizeError, Frame, check_channel_sizes, load_plane
from satwatch.services.frames.profiles import SatelliteProfile, get_profile

log = logging.getLogger(__name__)


#: What a source yields, kept by :func:`paced` (a simulator's frames stay frames).
ItemT = TypeVar("ItemT", bound=SourceItem)


def paced(items: Iterator[ItemT], speed: float, sleep: Callable[[float], None] = time.sleep) -> Iterator[ItemT]:
    """Replay items at ``speed`` times real time (by observation time); speed <= 0 means as fast as possible."""
    previous: datetime | None = None
    for item in items:
        t = item.time if isinstance(item, Frame) else item.time
        if speed > 0 and previous is not None and t is not None and t > previous:
            sleep((t - previous).total_seconds() / speed)
        if t is not None:
            previous = t
        yield item


def archive_source(
    archive: Archive, start: datetime | None = None, end: datetime | None = None
) -> Iterator[SourceItem]:
    """Frames of an archive between two times, in time order; unreadable frames become Rejected."""
    for t in archive.times_between(start, end):
        origin = ",".join(str(p) for p in archive.files(t).paths.values())
        try:
            frame = archive.load(t)
        except ChannelSizeError as exc:
            yield Rejected(
                "wrong_shape", f"frame {t:%Y-%m-%d %H:%M}: {exc}", origin, satellite=archive.satellite, time=t
            )
        except (OSError, ValueError) as exc:
            error = f"cannot read frame {t:%Y-%m-%d %H:%M}: {exc}"
            yield Rejected("corrupt_png", error, origin, satellite=archive.satellite, time=t)
        else:
            frame.origin = origin
            yield frame


class WatchPosition:
    """The frame times a watcher has handled, kept durably so a restart publishes nothing twice.

    A small JSON file, replaced atomically: the times published, and apart from them the times refused (sent
    to the dead-letter topic, so not retried after a restart either), within ``keep`` of the newest one, and
    that horizon (anything older counts as handled: a drop folder that keeps days of files is not re-sent).
    """

    def __init__(self, path: str | Path, keep: timedelta = timedelta(days=2)) -> None:
        self.path = Path(path)
        self.keep = keep
        self.times: set[datetime] = set()  # published
        self.refused: set[datetime] = set()
        self.horizon: datetime | None = None
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                self.times = {datetime.fromisoformat(t) for t in data["published"]}
                self.refused = {datetime.fromisoformat(t) for t in data.get("refused", [])}
                self.horizon = datetime.fromisoformat(data["horizon"]) if data.get("horizon") else None
            except (ValueError, KeyError, TypeError) as exc:
                # A damaged position must not stop the watcher; what it re-sends the detector refuses as
                # duplicates (dead letters), so say so loudly rather than lose frames.
                log.error("watch position %s is damaged (%s); starting without it", self.path, exc)
                self.times, self.refused, self.horizon = set(), set(), None

    def published(self, t: datetime) -> bool:
        return t in self.times or (self.horizon is not None and t <= self.horizon)

    def handled(self, t: datetime) -> bool:
        """Published or refused (or older than the horizon): not to be read again."""
        return t in self.refused or self.published(t)

    def add(self, times: Iterable[datetime], refused: bool = False) -> None:
        """Record times as published, or with ``refused`` as sent to the dead-letter topic instead."""
        (self.refused if refused else self.times).update(times)
        if not self.times and not self.refused:
            return
        newest = max(self.times | self.refused)
        self.horizon = newest - self.keep
        horizon = self.horizon
        self.times = {t for t in self.times if t > horizon}
        self.refused = {t for t in self.refused if t > horizon}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        body = {
            "horizon": horizon.isoformat(),
            "published": sorted(t.isoformat() for t in self.times),
            "refused": sorted(t.isoformat() for t in self.refused),
        }
        tmp.write_text(json.dumps(body))
        os.replace(tmp, self.path)


class DirectoryWatcher:
    """Watches a directory where a satellite's images land; yields each frame once, when its last channel lands.

    Files are recognised by the satellite profile's naming, in any sub-folder. A file counts as landed once
    its size has been stable for ``settle_seconds`` (writers copy files in pieces). A time whose channels
    stay incomplete for ``incomplete_after`` is rejected as missing a channel. A channel file that stays empty
    (0 bytes: a failed transfer) for ``empty_after`` seconds (at least the settle time) has its frame refused
    at once as ``corrupt_png``, the file named, rather than waited for. Image files the profile's
    naming does not recognise are logged once each and counted in ``unrecognised``. Only one area is taken:
    ``area``, or the first one seen (files of other areas are counted as unrecognised).
    """

    def __init__(
        self,
        directory: str | Path,
        satellite: str | SatelliteProfile = "COMS-1",
        area: str | None = None,
        settle_seconds: float = 0.5,
        incomplete_after: timedelta = timedelta(minutes=30),
        empty_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        on_unrecognised: Callable[[Path], None] | None = None,
        position: WatchPosition | None = None,
    ) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"watched directory {self.directory} does not exist")
        self.profile = get_profile(satellite) if isinstance(satellite, str) else satellite
        self.satellite = self.profile.name
        self.channels = self.profile.channels
        self.area = area.lower() if area else None  # file names' areas are matched in lower case
        self.unrecognised: set[Path] = set()
        self._on_unrecognised = on_unrecognised
        self.settle_seconds = settle_seconds
        self.incomplete_after = incomplete_after.total_seconds()
        self.empty_after = max(empty_after, settle_seconds)
        self._clock = clock
        self._sizes: dict[Path, tuple[int, float]] = {}  # path -> (size, first time seen at that size)
        self._pending: dict[datetime, dict[str, Path]] = {}
        self._first_seen: dict[datetime, float] = {}
        self._done: set[datetime] = set()
        self.position = position

    def _is_done(self, t: datetime) -> bool:
        return t in self._done or (self.position is not None and self.position.handled(t))

    def _stable_files(self) -> list[Path]:
        now = self._clock()
        stable = []
        for path in self.directory.rglob(f"*.{self.profile.image_format}"):
            name = self.profile.parse_filename(path.name)
            if name is not None and name.area == self.area and self._is_done(name.time):
                continue  # published already (this run or before a restart): not even a stat
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            seen = self._sizes.get(path)
            if seen is None or seen[0] != size:
                self._sizes[path] = (size, now)
                continue
            if now - seen[1] >= (self.settle_seconds if size > 0 else self.empty_after):
                stable.append(path)  # an empty one too once it has stayed empty: scan refuses its frame
        return stable

    def scan(self) -> list[SourceItem]:
        """One pass: frames completed since the last pass (in time order) and rejections."""
        now = self._clock()
        stable = self._stable_files()
        emptied = {path for path in stable if self._sizes[path][0] == 0}  # stayed empty for empty_after
        for path in stable:
            name = self.profile.parse_filename(path.name)
            if name is not None and self.area is None:
                self.area = name.area
            if name is None or name.channel not in self.channels or name.area != self.area:
                if path not in self.unrecognised:
                    self.unrecognised.add(path)
                    if self._on_unrecognised is not None:
                        self._on_unrecognised(path)
                    log.warning(
                        "%s: not a %s%s image (naming %s); ignored",
                        path,
                        self.satellite,
                        f" area {self.area}" if name is not None else "",
                        self.profile.filename_template,
                    )
                continue
            if self._is_done(name.time):
                continue
            self._pending.setdefault(name.time, {})[name.channel] = path
            self._first_seen.setdefault(name.time, now)
        out: list[SourceItem] = []
        for t in sorted(self._pending):
            files = self._pending[t]
            empty = [c for c in self.channels if c in files and files[c] in emptied]
            if empty:
                out.append(
                    Rejected(
                        "corrupt_png",
                        f"frame {t:%Y-%m-%d %H:%M}: "
                        + "; ".join(f"{c} file {files[c].name} is empty (0 bytes)" for c in empty)
                        + f" {self.empty_after:g} s after it appeared: a failed or unfinished transfer",
                        ",".join(str(files[c]) for c in self.channels if c in files),
                        satellite=self.satellite,
                        time=t,
                    )
                )
            elif all(c in files for c in self.channels):
                out.append(self._load(t, files))
            elif now - self._first_seen[t] >= self.incomplete_after:
                missing = [c for c in self.channels if c not in files]
                out.append(
                    Rejected(
                        "missing_channel",
                        f"frame {t:%Y-%m-%d %H:%M} still lacks {missing} after {self.incomplete_after:.0f} s",
                        ",".join(str(p) for p in files.values()),
                        satellite=self.satellite,
                        time=t,
                    )
                )
            else:
                continue
            self._done.add(t)
            del self._pending[t]
            del self._first_seen[t]
        return out

    def _load(self, t: datetime, files: dict[str, Path]) -> SourceItem:
        origin = ",".join(str(files[c]) for c in self.channels)
        try:
            check_channel_sizes({c: files[c] for c in self.channels}, self.profile)
            planes = [load_plane(files[c], self.profile) for c in self.channels]
            if len({p.shape for p in planes}) != 1:
                raise ValueError(f"channel sizes differ: {[p.shape for p in planes]}")
            return Frame(self.satellite, t, self.channels, np.stack(planes), origin, self.area)
        except (OSError, ValueError) as exc:
            payload = b"".join(files[c].read_bytes()[:65536] for c in self.channels if files[c].exists())
            if isinstance(exc, ChannelSizeError):  # the files read; one is not the others' size
                return Rejected("wrong_shape", f"frame {t:%Y-%m-%d %H:%M}: {exc}", origin, payload, self.satellite, t)
            return Rejected(
                "corrupt_png", f"cannot read frame {t:%Y-%m-%d %H:%M}: {exc}", origin, payload, self.satellite, t
            )

    def commit(self, times: Iterable[datetime], refused: bool = False) -> None:
        """Record frame times as published, or as refused (sent to the dead-letter topic), once flushed to Kafka.

        Either way the watcher does not read them again, not even after a restart.
        """
        if self.position is not None:
            self.position.add(times, refused)

    def watch(self, poll_interval: float = 1.0, stop: Callable[[], bool] = lambda: False) -> Iterator[SourceItem]:
        while not stop():
            yield from self.scan()
            time.sleep(poll_interval)
