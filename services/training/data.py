"""Training data: frames of an archive (simulated when none is given), time-block splits and windows."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from tqdm import tqdm

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import Frame, shrink
from satwatch.services.frames.windows import windows_over
from satwatch.services.training.labels import default_labels, kinds_at, load_labels

log = logging.getLogger(__name__)


@dataclass
class FrameSet:
    """Frames of one satellite in time order, as one uint8 array, with the event kinds active per frame."""

    satellite: str
    times: list[datetime]
    data: np.ndarray
    labels: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.labels:
            self.labels = [() for _ in self.times]
        if len(self.times) != len(self.data) or len(self.labels) != len(self.times):
            raise ValueError("times, data and labels of a FrameSet must have the same length")

    def __len__(self) -> int:
        return len(self.times)

    def frame(self, i: int) -> Frame:
        return Frame(self.satellite, self.times[i], ("ir01", "ir02", "swir", "wv"), self.data[i])

    def normal(self) -> np.ndarray:
        """Boolean mask of frames with no labelled event."""
        return np.array([not lab for lab in self.labels], dtype=bool)


def load_archive(
    root: str | Path, progress: bool = True, satellite: str = "COMS-1", labels: str | Path | None = None
) -> FrameSet:
    """Read every complete frame of a KMA-named archive (shrunk to the study size) plus its event labels.

    ``labels``: a labels file (TSV or JSON, see :mod:`satwatch.services.training.labels`); default: the
    archive's own ``labels.json`` or ``labels.tsv`` if it has one, else every frame is normal.
    """
    archive = Archive(root, satellite)
    if not archive.times:
        raise ValueError(f"archive {root} holds no complete frame")
    label_file = Path(labels) if labels is not None else default_labels(root)
    events = load_labels(label_file) if label_file is not None else []
    first = shrink(archive.load(archive.times[0]))
    data = np.empty((len(archive.times), *first.data.shape), dtype=np.uint8)
    for i, t in enumerate(tqdm(archive.times, desc=f"reading {Path(root).name}", disable=None if progress else True)):
        data[i] = first.data if i == 0 else shrink(archive.load(t)).data
    return FrameSet(satellite, list(archive.times), data, kinds_at(events, archive.times))


def default_start() -> datetime:
    return datetime(2024, 7, 1, tzinfo=UTC)


def simulated_archive(
    cache_dir: str | Path, seed: int, days: float, events: bool, start: datetime | None = None
) -> Path:
    """Write (once) a simulated archive into ``cache_dir`` and return its folder."""
    from satwatch.services.simulator.scene import SimConfig, write_archive

    start = start or default_start()
    key = json.dumps({"seed": seed, "days": days, "events": events, "start": start.isoformat()}, sort_keys=True)
    folder = (
        Path(cache_dir)
        / f"sim-{seed}-{days:g}d-{'ev' if events else 'normal'}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    )
    done = folder / ".complete"
    if not done.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        log.info("simulating %g days (seed %d, events %s) into %s", days, seed, events, folder)
        cfg = SimConfig(seed=seed, start=start, days=days, events=events)
        write_archive(cfg, folder)
        done.write_text(key)
    return folder


def simulate_frames(
    seed: int,
    days: float,
    events: bool,
    start: datetime | None = None,
    cache_dir: str | Path | None = None,
    geography: int | None = None,
) -> FrameSet:
    """Simulate frames in memory (cached as ``.npz`` under ``cache_dir`` when given), labels included.

    ``geography`` fixes the coastline (see :class:`SimConfig`); None gives each seed its own.
    """
    from satwatch.services.simulator.scene import SceneSimulator, SimConfig

    start = start or default_start()
    path = None
    if cache_dir is not None:
        geo = "" if geography is None or geography == seed else f"-geo{geography}"
        size = f"{SimConfig.width}x{SimConfig.height}"  # a cache of another frame geometry must not be reused
        kind = "ev" if events else "normal"
        path = Path(cache_dir) / f"sim-{seed}{geo}-{size}-{days:g}d-{kind}-{start:%Y%m%d%H%M}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                times = [datetime.fromtimestamp(float(x), UTC) for x in z["times"]]
                labels = [tuple(x.split(",")) if x else () for x in z["labels"].tolist()]
                return FrameSet(str(z["satellite"]), times, z["data"], labels)
    sim = SceneSimulator(SimConfig(seed=seed, days=days, events=events, start=start, geography=geography))
    frames = list(sim.frames())
    fs = FrameSet(
        sim.cfg.satellite,
        [f.time for f in frames],
        np.stack([f.data for f in frames]),
        [tuple(sorted({e.kind for e in sim.events if e.active(f.time)})) for f in frames],
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            satellite=np.array(fs.satellite),
            times=np.array([t.timestamp() for t in fs.times]),
            labels=np.array([",".join(lab) for lab in fs.labels]),
            data=fs.data,
        )
        tmp.replace(path)
    return fs


def concat(sets: Sequence[FrameSet]) -> FrameSet:
    """Several frame sets as one (times need not be increasing across sets)."""
    return FrameSet(
        sets[0].satellite,
        [t for s in sets for t in s.times],
        np.concatenate([s.data for s in sets]),
        [lab for s in sets for lab in s.labels],
    )


def split_blocks(n: int, fractions: Sequence[float] = (0.2, 0.2, 0.6)) -> list[range]:
    """Cut ``n`` time-ordered frames into contiguous blocks with these fractions (train, valid, test)."""
    edges = np.round(np.cumsum([0.0, *fractions]) / sum(fractions) * n).astype(int)
    return [range(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


#: One frame in this many goes to threshold calibration (20%), taken as whole UTC days (or hours, below).
CALIBRATION_EVERY = 5


def calibration_split(times: Sequence[datetime], every: int = CALIBRATION_EVERY) -> tuple[np.ndarray, str]:
    """Boolean mask of the frames held out for validation and threshold calibration, and how they were chosen.

    Normal scores swing with the hour (sunlight in the short-wave channel, the diurnal cycle), so the
    calibration frames must cover every hour of the day, not one contiguous stretch at the end. Every
    ``every``-th whole UTC day (counted from the first frame's day) is held out when the frames span at least
    ``every`` days; shorter spans hold out every ``every``-th hour instead (24 is not a multiple of 5, so the
    held-out hours move through the day from one day to the next), at the cost of calibration frames lying
    next to training frames.
    """
    if not times:
        return np.zeros(0, dtype=bool), "no frames"
    first = min(times).astimezone(UTC)
    origin = datetime(first.year, first.month, first.day, tzinfo=UTC)
    hours = np.array([(t.astimezone(UTC) - origin).total_seconds() // 3600 for t in times], dtype=np.int64)
    days = hours // 24
    if len(np.unique(days)) >= every:
        mask = days % every == every - 1
        how = f"every {every}th UTC day of the archive (whole days, so every hour of the day)"
    else:
        mask = hours % every == every - 1
        how = (
            f"every {every}th hour of the archive (it spans fewer than {every} days, so not whole days; the held-out "
            "hours move through the day)"
        )
    return mask, how


def frames_per_day(times: Sequence[datetime]) -> float:
    """Frames a day at the period's typical cadence (96 at 15 minutes), for false alerts per normal day."""
    if len(times) < 2:
        return 96.0
    steps = np.diff(np.array([t.timestamp() for t in sorted(times)]))
    step = float(np.median(steps[steps > 0])) if (steps > 0).any() else 900.0
    return 86400.0 / step


def hours_covered(times: Sequence[datetime]) -> int:
    """How many of the 24 UTC hours of the day these times fall in."""
    return len({t.astimezone(UTC).hour for t in times})


def block_windows(
    times: Sequence[datetime],
    block: range,
    size: int = 20,
    stride: int = 4,
    span: timedelta = timedelta(hours=6),
) -> np.ndarray:
    """Frame indices (M, size) of every ``stride``-th full window inside ``block``, by the one window rule
    (:func:`satwatch.services.frames.windows.windows_over`: the latest ``size`` frames within ``span``), so
    training sees the windows the detector and the index see, gaps included where the span allows.

    Only the block's own frames are used, so no frame is shared between splits.
    """
    inside = list(times[block.start : block.stop])
    position = {t: block.start + i for i, t in enumerate(inside)}
    windows = windows_over(inside, size, span, stride=stride)
    return np.array([[position[t] for t in w] for w in windows], dtype=np.int64).reshape(-1, size)
