"""The original study's data layout and its triplet protocol.

Layout of a study directory::

    video2image.txt          line i (1-based) = the comma-separated image ids of window i
    images/image_{id}/       one folder per frame: ir01.png ir02.png swir.png wv.png
    train.txt valid.txt test.txt
                             triplets "x<TAB>y<TAB>z<TAB>s_xy<TAB>s_xz": anchor window x, a near window y,
                             a far window z (window numbers as video2image line numbers) and the
                             ground-truth similarities s_xy > s_xz
    frames.txt               (ours) "id<TAB>ISO time" so image ids map back to archive times

Splits follow the study: windows ordered by time are cut 20:20:60 into train, valid and test as contiguous
blocks, and a window that shares a frame with a window of an earlier split is dropped, so overlapping
windows never straddle two splits.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import CHANNELS
from satwatch.services.metric.groundtruth import (
    GridSpec,
    SignatureCache,
    frame_signatures_from_paths,
    pairwise_similarity,
    window_signature,
)

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Triplet:
    """Anchor window x, near window y, far window z (1-based window numbers) and s(x,y), s(x,z)."""

    x: int
    y: int
    z: int
    s_xy: float
    s_xz: float

    def line(self) -> str:
        return f"{self.x}\t{self.y}\t{self.z}\t{self.s_xy:.6f}\t{self.s_xz:.6f}"


# ---------------------------------------------------------------------------------------------------
# Files


def read_video2image(path: str | Path) -> list[list[int]]:
    """Windows as lists of image ids; element i-1 is window i. Blank lines end nothing and are refused."""
    windows = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            raise ValueError(f"{path}:{lineno}: empty line (every line is one window)")
        try:
            windows.append([int(tok) for tok in line.replace(" ", "").split(",") if tok])
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: expected comma-separated image ids, got {line!r}") from exc
    return windows


def write_video2image(path: str | Path, windows: Sequence[Sequence[int]]) -> None:
    Path(path).write_text("".join(",".join(str(i) for i in w) + "\n" for w in windows))


def read_triplets(path: str | Path) -> list[Triplet]:
    out = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 5:
            raise ValueError(f"{path}:{lineno}: expected 5 tab-separated fields, got {len(parts)}")
        try:
            out.append(Triplet(int(parts[0]), int(parts[1]), int(parts[2]), float(parts[3]), float(parts[4])))
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: bad triplet {line!r}") from exc
    return out


def write_triplets(path: str | Path, triplets: Sequence[Triplet]) -> None:
    Path(path).write_text("".join(t.line() + "\n" for t in triplets))


def image_dir(root: str | Path, image_id: int) -> Path:
    return Path(root) / "images" / f"image_{image_id}"


def study_window_files(
    root: str | Path,
    window: int,
    video2image: Sequence[Sequence[int]] | None = None,
    channels: Sequence[str] = CHANNELS,
) -> list[list[Path]]:
    """Channel files of window number ``window`` (1-based) of a study directory, frame by frame."""
    v2i = video2image if video2image is not None else read_video2image(Path(root) / "video2image.txt")
    if not 1 <= window <= len(v2i):
        raise ValueError(f"window {window} is not in video2image.txt (1..{len(v2i)})")
    frames = []
    for image_id in v2i[window - 1]:
        paths = [image_dir(root, image_id) / f"{c}.png" for c in channels]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"window {window}: missing {', '.join(missing)}")
        frames.append(paths)
    return frames


def write_frames_index(path: str | Path, times: Sequence[datetime]) -> None:
    """``frames.txt``: image id (1-based) and its observation time."""
    Path(path).write_text("".join(f"{i}\t{t.isoformat()}\n" for i, t in enumerate(times, start=1)))


def export_images(root: str | Path, frames: Sequence[dict[str, Path]], link: bool = True) -> None:
    """Place frame k's channel files (k = 1..) as ``images/image_k/{channel}.png``: hard links where the
    file system allows (no extra space), else copies."""
    for k, paths in enumerate(frames, start=1):
        d = image_dir(root, k)
        d.mkdir(parents=True, exist_ok=True)
        for channel, src in paths.items():
            dst = d / f"{channel}.png"
            if dst.exists():
                dst.unlink()
            try:
                if not link:
                    raise OSError
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)


# ---------------------------------------------------------------------------------------------------
# Splits and triplets


def split_windows(
    windows: Sequence[Sequence[int]], ratios: tuple[float, float, float] = (0.2, 0.2, 0.6)
) -> dict[str, list[int]]:
    """Cut windows (in time order, as lists of frame ids) into contiguous train/valid/test blocks.

    Returns 0-based window indices per split. A window sharing any frame with a window of an earlier split
    is dropped, so no frame is seen by two splits.
    """
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise ValueError(f"ratios must be three non-negative numbers, got {ratios}")
    total = sum(ratios)
    m = len(windows)
    bounds = [0, round(m * ratios[0] / total), round(m * (ratios[0] + ratios[1]) / total), m]
    out: dict[str, list[int]] = {}
    seen: set[int] = set()
    for name, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:], strict=True):
        keep = [i for i in range(lo, hi) if not seen.intersection(windows[i])]
        out[name] = keep
        for i in keep:
            seen.update(windows[i])
    return out


def make_triplets(
    sims: np.ndarray,
    members: Sequence[int],
    rng: np.random.Generator,
    per_anchor: int = 1,
    near_fraction: float = 0.1,
) -> list[Triplet]:
    """Triplets among ``members`` (0-based window indices) from their similarity matrix ``sims``
    (len(members) square, in the order of ``members``).

    For each anchor, the near window is drawn from the ``near_fraction`` most similar other members and
    the far window from the members less similar to the anchor than the near one. Window numbers in the
    result are 1-based, as in video2image.txt.
    """
    k = len(members)
    if sims.shape != (k, k):
        raise ValueError(f"similarity matrix is {sims.shape}, expected {(k, k)}")
    out: list[Triplet] = []
    if k < 3:
        return out
    top = max(1, int(round(near_fraction * (k - 1))))
    for a in range(k):
        others = np.array([j for j in range(k) if j != a])
        order = others[np.argsort(-sims[a, others], kind="stable")]
        for _ in range(per_anchor):
            near = int(order[rng.integers(0, top)])
            lower = others[sims[a, others] < sims[a, near]]
            if len(lower) == 0:
                continue
            far = int(lower[rng.integers(0, len(lower))])
            out.append(
                Triplet(
                    members[a] + 1,
                    members[near] + 1,
                    members[far] + 1,
                    float(sims[a, near]),
                    float(sims[a, far]),
                )
            )
    return out


@dataclass
class StudyBuild:
    """What :func:`build_study` wrote."""

    windows: int
    frames: int
    triplets: dict[str, int]
    dropped: int


def build_study(
    archive: Archive,
    out: str | Path,
    spec: GridSpec,
    *,
    window: int = 20,
    stride: int = 1,
    max_span_hours: float | None = None,
    per_anchor: int = 1,
    near_fraction: float = 0.1,
    ratios: tuple[float, float, float] = (0.2, 0.2, 0.6),
    seed: int = 0,
    cache: SignatureCache | None = None,
    workers: int = 1,
    export: bool = False,
    progress: bool = False,
) -> StudyBuild:
    """Write video2image.txt, frames.txt and train/valid/test triplets for an archive, following the study.

    Windows follow the one window rule (:mod:`satwatch.services.frames.windows`, through
    :meth:`Archive.windows`): the window ending at every ``stride``-th complete frame holds the latest
    ``window`` frames within the archive profile's span (20 frames within 6 hours for COMS-1), full windows
    only, so a window may span missing frames as the study's did. Those whose first and last frames are more
    than ``max_span_hours`` apart are also skipped. With ``export`` the frames are also laid out as
    ``images/image_{id}/`` (hard links where possible).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = archive.windows(window, stride)
    if max_span_hours is not None:
        runs = [w for w in runs if (w[-1] - w[0]).total_seconds() <= max_span_hours * 3600]
    if len(runs) < 3:
        raise ValueError(
            f"{archive.root} gives only {len(runs)} windows of {window} frames within "
            f"{archive.profile.window_hours:g} h; need at least 3"
        )
    used = sorted({t for w in runs for t in w})
    ids = {t: i for i, t in enumerate(used, start=1)}
    v2i = [[ids[t] for t in w] for w in runs]
    write_video2image(out / "video2image.txt", v2i)
    write_frames_index(out / "frames.txt", used)
    if export:
        export_images(out, [archive.files(t).paths for t in used])

    frame_paths = [[archive.files(t).paths[c] for c in archive.channels] for t in used]
    sigs = frame_signatures_from_paths(frame_paths, spec, cache, workers=workers, progress=progress)
    wins = [window_signature([sigs[i - 1] for i in w]) for w in v2i]

    rng = np.random.default_rng(seed)
    parts = split_windows(v2i, ratios)
    counts: dict[str, int] = {}
    for name in SPLITS:
        members = parts[name]
        trips: list[Triplet] = []
        if len(members) >= 3:
            sims = pairwise_similarity([wins[i] for i in members])
            trips = make_triplets(sims, members, rng, per_anchor=per_anchor, near_fraction=near_fraction)
        write_triplets(out / f"{name}.txt", trips)
        counts[name] = len(trips)
    dropped = len(runs) - sum(len(p) for p in parts.values())
    return StudyBuild(windows=len(runs), frames=len(used), triplets=counts, dropped=dropped)
