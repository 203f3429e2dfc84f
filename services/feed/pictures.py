"""Pictures for the feed, rendered once per alert and kept as PNG files: the window's frames as a strip of
thumbnails, and the anomaly heat map over the latest frame. ``<pictures dir>/<alert id>/strip.png`` and
``heatmap.png`` are what the feed serves; whoever stores the alert (the detector, or the demo) writes them."""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageDraw

from satwatch.services.detection.detector import FOLLOWING as DETECTOR_FOLLOWING
from satwatch.services.detection.detector import FrameOutcome
from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import Frame

log = logging.getLogger(__name__)

THUMB_WIDTH = 188
#: Frames as (time, small grey picture).
Frames = list[tuple[datetime, np.ndarray]]  # half the shrunk COMS width; the strip uses half of that again


def _grey(frame: Frame) -> np.ndarray:
    """The frame's first channel (infrared 10.8 um for COMS), as the picture a forecaster knows."""
    return np.asarray(frame.data[0])


def _thumb(grey: np.ndarray, width: int) -> Image.Image:
    img = Image.fromarray(grey)
    height = max(1, round(img.height * width / img.width))
    return img.resize((width, height), Image.Resampling.BILINEAR)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # fast: rendering must keep up with the stream
    return buf.getvalue()


def heat_colours(heat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map a heat map to RGB colours (yellow to red) and an alpha that is zero where the map is ordinary:
    values are scaled between the map's median and its 99.9th percentile."""
    h = np.asarray(heat, dtype=np.float64)
    lo, hi = np.percentile(h, 50), np.percentile(h, 99.9)
    v = np.clip((h - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(h)
    rgb = np.stack([np.full_like(v, 255.0), 255.0 * (1.0 - v), np.zeros_like(v)], axis=-1)
    alpha = 220.0 * np.clip((v - 0.3) / 0.7, 0.0, 1.0)
    return rgb.astype(np.uint8), alpha.astype(np.uint8)


def heatmap_png(heat: np.ndarray, background: np.ndarray | None = None, width: int = THUMB_WIDTH * 2) -> bytes:
    """The heat map over the frame (grey ``background``, any size; the map is stretched to it)."""
    if background is None:
        base = Image.new("RGB", (width, round(width * heat.shape[0] / heat.shape[1])), (40, 40, 40))
    else:
        base = _thumb(background, width).convert("RGB")
    rgb, alpha = heat_colours(heat)
    overlay = Image.fromarray(np.dstack([rgb, alpha]), "RGBA").resize(base.size, Image.Resampling.BILINEAR)
    base.paste(overlay, (0, 0), overlay)
    return _png(base)


def strip_png(frames: list[tuple[datetime, np.ndarray]], width: int = THUMB_WIDTH // 2, per_row: int = 10) -> bytes:
    """Thumbnails of the window's frames in time order, ``per_row`` to a row, each labelled with its time."""
    if not frames:
        raise ValueError("no frames to draw")
    thumbs = [(t, _thumb(g, width)) for t, g in sorted(frames, key=lambda f: f[0])]
    th = thumbs[0][1].height
    label = 12
    rows = (len(thumbs) + per_row - 1) // per_row
    cols = min(per_row, len(thumbs))
    strip = Image.new("L", (cols * (width + 2), rows * (th + label + 2)), 255)
    draw = ImageDraw.Draw(strip)
    for n, (t, img) in enumerate(thumbs):
        x, y = (n % per_row) * (width + 2), (n // per_row) * (th + label + 2)
        strip.paste(img, (x, y + label))
        draw.text((x + 2, y), f"{t:%H:%M}", fill=0)
    return _png(strip)


def similar_png(
    window: list[tuple[datetime, np.ndarray]], following: list[tuple[datetime, np.ndarray]], width: int = 46
) -> bytes:
    """A past event at a glance: its window's frames, a red bar, then the frames that followed it; the first
    frame is labelled with its date."""
    frames = [(t, _thumb(g, width), False) for t, g in sorted(window, key=lambda f: f[0])]
    frames += [(t, _thumb(g, width), True) for t, g in sorted(following, key=lambda f: f[0])]
    if not frames:
        raise ValueError("no frames to draw")
    th, label, bar = frames[0][1].height, 12, 4
    n_after = sum(1 for f in frames if f[2])
    img = Image.new("RGB", (len(frames) * (width + 1) + (bar + 2 if n_after else 0), th + label), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    x = 0
    for n, (t, thumb, after) in enumerate(frames):
        if after and (n == 0 or not frames[n - 1][2]):
            draw.rectangle((x, label, x + bar - 1, label + th), fill=(220, 38, 38))
            x += bar + 2
        img.paste(thumb.convert("RGB"), (x, label))
        last = n == len(frames) - 1 and n > 1  # the end is labelled too (26 px of 47: clear of the one before)
        text = f"{t:%m-%d %H:%M}" if n == 0 else f"{t:%H:%M}" if n % 3 == 0 or last else ""
        draw.text((x + 1, 0), text, fill=(0, 0, 0))
        x += width + 1
    return _png(img)


class RecentFrames:
    """The latest frames of each satellite as small grey pictures, so a window's strip can be drawn when its
    alert comes. Thread-safe; keeps ``keep`` frames a satellite."""

    def __init__(self, keep: int = 400, width: int = THUMB_WIDTH) -> None:
        self.keep = keep
        self.width = width
        self._frames: dict[str, deque[tuple[datetime, np.ndarray]]] = {}
        self._lock = threading.Lock()

    def add(self, frame: Frame) -> None:
        small = np.asarray(_thumb(_grey(frame), self.width))
        with self._lock:
            self._frames.setdefault(frame.satellite, deque(maxlen=self.keep)).append((frame.time, small))

    def window(self, satellite: str, start: datetime, end: datetime) -> list[tuple[datetime, np.ndarray]]:
        with self._lock:
            return [(t, g) for t, g in self._frames.get(satellite, ()) if start <= t <= end]


class PictureWriter:
    """Writes an alert's pictures once; a second call for the same alert (a replay) writes nothing.
    ``submit`` hands the work to a background thread, so the caller (the detector's loop) does not wait."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self.failures = 0
        # consecutive alerts of one event mostly find the same past events: draw each of those once
        self._similar: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()

    def submit(
        self,
        alert_id: str,
        heat: np.ndarray | None,
        frames: list[tuple[datetime, np.ndarray]],
        similar: list[tuple[Frames, Frames]] | Callable[[], list[tuple[Frames, Frames]]] | None = None,
    ) -> None:
        """Queue an alert's pictures; ``similar`` may be a function that reads them (run on the worker)."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="pictures", daemon=True)
            self._worker.start()
        self._queue.put((alert_id, None if heat is None else np.array(heat, copy=True), frames, similar))

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                alert_id, heat, frames, similar = job
                if callable(similar):  # frames to be read from an archive: here, off the detector's thread
                    similar = similar()
                self.write(alert_id, heat, frames, similar)
            except (OSError, ValueError) as exc:
                self.failures += 1
                log.warning("pictures for alert %s: %s", job[0], exc)

    def close(self, timeout: float = 30.0) -> None:
        """Finish the pictures already submitted."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout)
            self._worker = None

    def write(
        self,
        alert_id: str,
        heat: np.ndarray | None,
        frames: list[tuple[datetime, np.ndarray]],
        similar: list[tuple[Frames, Frames]] | None = None,
    ) -> list[Path]:
        """The window strip, the heat map and, for each similar past event whose frames are at hand,
        ``similar-<n>.png`` (its window and what followed); files already there are kept."""
        folder = self.root / alert_id
        folder.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        latest = max(frames, key=lambda f: f[0])[1] if frames else None
        if frames and not (folder / "strip.png").exists():
            written.append(self._save(folder / "strip.png", strip_png(frames)))
        if heat is not None and heat.size and not (folder / "heatmap.png").exists():
            written.append(self._save(folder / "heatmap.png", heatmap_png(heat, latest)))
        for n, (window, following) in enumerate(similar or []):
            path = folder / f"similar-{n}.png"
            if (window or following) and not path.exists():
                written.append(self._save(path, self._similar_png(window, following)))
        return written

    def _similar_png(self, window: Frames, following: Frames) -> bytes:
        times = [t for t, _ in window + following]
        key = (min(times), max(times), len(window), len(following))
        data = self._similar.get(key)
        if data is None:
            data = self._similar[key] = similar_png(window, following)
            if len(self._similar) > 256:
                self._similar.popitem(last=False)
        return data

    @staticmethod
    def _save(path: Path, data: bytes) -> Path:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # the feed never serves a half-written file
        return path


#: How much of what followed a similar past event its picture shows: the hours the alert's text lists (the
#: detector's ``following``), so the picture and the times beside it cover the same period.
FOLLOWING = DETECTOR_FOLLOWING
#: Most thumbnails drawn of a similar event's window, and of what followed it: frames spread evenly over the
#: period, the first and the last always among them, so the picture spans what the text lists.
SIMILAR_WINDOW_THUMBS = 10
SIMILAR_FOLLOWING_THUMBS = 12


T = TypeVar("T")


def spread(frames: Sequence[T], most: int) -> list[T]:
    """At most ``most`` of ``frames``, evenly spread over them, the first and the last always kept."""
    if len(frames) <= most:
        return list(frames)
    if most <= 1:
        return list(frames[:most])
    picks = sorted({round(i * (len(frames) - 1) / (most - 1)) for i in range(most)})
    return [frames[i] for i in picks]


class ArchiveFrames:
    """Small grey pictures of a satellite's archived frames, for similar past events older than the frames the
    detector still holds. Archives are opened per satellite on first use, under one root."""

    def __init__(self, root: str | Path, width: int = THUMB_WIDTH) -> None:
        self.root = Path(root)
        self.width = width
        self._archives: dict[str, Archive] = {}

    def window(self, satellite: str, start: datetime, end: datetime, most: int | None = None) -> Frames:
        """Thumbnails of the archived frames between ``start`` and ``end``; with ``most``, only that many, evenly
        spread, chosen before any is read (reading is what takes the time)."""
        archive = self._archives.get(satellite)
        if archive is None:
            archive = self._archives[satellite] = Archive(self.root, satellite)
        times = archive.times_between(start, end)
        if most is not None:
            times = spread(times, most)
        return [(t, np.asarray(_thumb(_grey(archive.load(t)), self.width))) for t in times]


class AlertPictures:
    """Each new alert's pictures, drawn from the frames the detector has seen: the heat map over the frame,
    the window as a strip, and for each similar past event its window and the hours that followed it. Past
    events older than the frames held in memory are read from ``archive`` when one is given (on the picture
    thread, never the detector's). Hook ``on_frame`` and ``on_outcome`` into the detector consumer."""

    def __init__(self, root: str | Path, keep: int = 400, archive: str | Path | None = None) -> None:
        self.recent = RecentFrames(keep)
        self.archive = ArchiveFrames(archive) if archive is not None else None
        self.writer = PictureWriter(root)

    def on_frame(self, frame: Frame) -> None:
        self.recent.add(frame)

    def on_outcome(self, outcome: FrameOutcome) -> None:
        if outcome.alert is None:
            return
        a = outcome.alert
        events = [(ev.satellite, ev.start, ev.end) for ev in a.similar]

        def similar() -> list[tuple[Frames, Frames]]:
            return [self.similar_frames(sat, start, end) for sat, start, end in events]

        window = self.recent.window(a.satellite, a.window_start, a.window_end)
        # Without an archive everything is in memory: take it now. With one, reading may take seconds, so the
        # worker does it (the in-memory frames are still there a few seconds on).
        self.writer.submit(a.id, outcome.heatmap, window, similar if self.archive is not None else similar())

    def similar_frames(self, satellite: str, start: datetime, end: datetime) -> tuple[Frames, Frames]:
        """A similar past event's window and the ``FOLLOWING`` hours after it (those its alert lists), each
        thinned evenly to the thumbnails its picture has room for."""
        pair = []
        for lo, hi, most in (
            (start, end, SIMILAR_WINDOW_THUMBS),
            (end + timedelta(seconds=1), end + FOLLOWING, SIMILAR_FOLLOWING_THUMBS),
        ):
            got = self.recent.window(satellite, lo, hi)
            if not got and self.archive is not None:
                try:
                    got = self.archive.window(satellite, lo, hi, most)
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("pictures: archive frames of %s %s..%s unreadable: %s", satellite, lo, hi, exc)
            pair.append(spread(got, most))
        return pair[0], pair[1]

    def close(self) -> None:
        self.writer.close()
