"""``satwatch similarity``: the exact ground-truth similarity between two windows."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from satwatch.cli import add_config_argument
from satwatch.cli._common import add_grid_arguments, spec_from_args
from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import CHANNELS
from satwatch.services.metric.groundtruth import (
    SignatureCache,
    WindowComparison,
    WindowSignature,
    cell_similarities,
    frame_signatures_from_paths,
    window_files,
    window_signature,
    window_similarity,
)
from satwatch.services.metric.study import study_window_files


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``similarity`` subcommand."""
    p = subparsers.add_parser(
        "similarity",
        help="exact ground-truth similarity between two windows (the study's grid-histogram KS metric)",
        description=(
            "Compute the study's ground-truth similarity between two windows: every image is cut into an "
            "N x N grid, each cell's grey values are binned into B+1 bins, cells are compared by the "
            "two-sample Kolmogorov-Smirnov statistic D, and the similarity is the mean of 1 - D over "
            "frames, channels and cells (1 = identical). Prints the similarity on standard output. A window is "
            "a directory in the study layout (image_1 .. image_20/{ir01,ir02,swir,wv}.png) by default, a window "
            "number with --study-root, or with --archive the time it ends at: the window rule takes the latest "
            "20 frames (the profile's count) within the 6 hours up to and including that time, fewer where frames "
            "are missing. Windows of different lengths are compared on the latest frames both hold, aligned "
            "from the end; a note on standard error says so."
        ),
        epilog="Example: satwatch similarity --archive DATA 2011-03-03T12:00Z 2011-03-03T13:15Z --cells",
    )
    add_config_argument(p)
    p.add_argument("window_a", metavar="WINDOW_A", help="first window: directory, window number or ISO end time")
    p.add_argument("window_b", metavar="WINDOW_B", help="second window, in the same form as WINDOW_A")
    add_grid_arguments(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--study-root",
        metavar="DIR",
        help="windows are 1-based window numbers of DIR/video2image.txt, frames in DIR/images/image_{id}/",
    )
    where.add_argument(
        "--archive",
        metavar="DIR",
        help="windows are ISO end times (e.g. 2011-03-03T13:15Z) in this archive of the satellite's images (named "
        "as its profile says, in any sub-folders); each window holds the latest --window-size frames within the "
        "profile's window span (6 h for COMS-1) up to and including its end time",
    )
    p.add_argument("--satellite", default="COMS-1", help="satellite profile of the archive (default COMS-1)")
    p.add_argument("--area", help="area (sector) of the archive, when it holds several")
    p.add_argument(
        "--window-size",
        type=int,
        metavar="K",
        help="frames in a full window with --archive (default: the profile's, 20 for COMS-1)",
    )
    p.add_argument(
        "--cells",
        action="store_true",
        help="also print, per channel, the N x N grid of cell similarities (mean over frames) and the least "
        "similar cells, to show where the windows differ",
    )
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        help="write a heat map per channel of 1 - similarity (the KS distance) over the N x N grid",
    )
    p.set_defaults(func=run)


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO time: {text!r} (try 2012-10-27T00:00Z)") from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _archive_window(archive: Archive, end_text: str, size: int | None, label: str) -> list[list[Path]]:
    """The window ending at ``end_text`` by the one window rule; a part-filled one is noted on standard error."""
    end = _parse_time(end_text)
    profile = archive.profile
    full = size or profile.window_frames
    times = archive.window(end, full)
    span = f"{profile.window_hours:g} h"
    if not times:
        raise ValueError(
            f"{archive.root} holds no complete {archive.satellite} frame in the {span} up to {end:%Y-%m-%d %H:%M}Z"
        )
    where = f"window {label} ends {times[-1]:%Y-%m-%d %H:%M}Z, starts {times[0]:%Y-%m-%d %H:%M}Z"
    if len(times) < full:
        print(
            f"note: {where}: part-filled, {len(times)} of {full} frames (only {len(times)} complete frames in the "
            f"{span} up to {end:%Y-%m-%d %H:%M}Z)",
            file=sys.stderr,
        )
    else:
        print(f"note: {where}: {len(times)} frames", file=sys.stderr)
    return [[archive.files(t).paths[c] for c in archive.channels] for t in times]


def resolve_window(text: str, args: argparse.Namespace, archive: Archive | None, label: str = "") -> list[list[Path]]:
    """The channel files of one window named on the command line."""
    if archive is not None:
        return _archive_window(archive, text, getattr(args, "window_size", None), label or text)
    if args.study_root:
        try:
            number = int(text)
        except ValueError as exc:
            raise ValueError(f"with --study-root a window is a window number, got {text!r}") from exc
        return study_window_files(args.study_root, number)
    return window_files(text)


def format_cells(cells: np.ndarray, worst: int = 10, channel_names: Sequence[str] = CHANNELS) -> str:
    """Per-channel grid of mean cell similarity, then the least similar individual cells."""
    frames, channels, n, _ = cells.shape
    names = list(channel_names) if channels == len(channel_names) else [f"channel {c}" for c in range(channels)]
    lines = []
    mean = cells.mean(axis=0)
    for c in range(channels):
        lines.append(f"{names[c]}: mean {mean[c].mean():.6f}, cell similarity averaged over {frames} frames")
        for row in mean[c]:
            lines.append(" ".join(f"{v:4.2f}" for v in row))
    lines.append("least similar cells (frame, channel, row, column: 1 - KS):")
    order = np.argsort(cells, axis=None, kind="stable")[:worst]
    for flat in order:
        f, c, i, j = np.unravel_index(flat, cells.shape)
        lines.append(f"  frame {f + 1:2d} {names[c]:>5} row {i:2d} col {j:2d}: {cells[f, c, i, j]:.6f}")
    return "\n".join(lines)


def plot_cells(cells: np.ndarray, similarity: float, out: str | Path, channel_names: Sequence[str] = CHANNELS) -> None:
    """Heat map of the KS distance per cell, one panel per channel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    distance = 1.0 - cells.mean(axis=0)
    channels = distance.shape[0]
    names = list(channel_names) if channels == len(channel_names) else [f"channel {c}" for c in range(channels)]
    fig, axes = plt.subplots(1, channels, figsize=(3.2 * channels + 0.8, 3.4), squeeze=False)
    vmax = max(float(distance.max()), 1e-6)
    im = None
    for c, ax in enumerate(axes[0]):
        im = ax.imshow(distance[c], cmap="magma", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{names[c]} (mean {1 - distance[c].mean():.3f})")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"1 - cell similarity (KS distance), window similarity {similarity:.6f}")
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    archive = Archive(args.archive, args.satellite, args.area) if args.archive else None
    if archive is not None:
        archive.require_frames()
    wa = resolve_window(args.window_a, args, archive, "A")
    wb = resolve_window(args.window_b, args, archive, "B")
    k = min(len(wa), len(wb))
    cache = SignatureCache(args.cache) if args.cache else None
    # Windows of different lengths: only the latest k frames of each are compared (and read).
    sigs = frame_signatures_from_paths([*wa[-k:], *wb[-k:]], spec, cache, workers=args.workers)
    a: WindowSignature = window_signature(sigs[:k])
    b: WindowSignature = window_signature(sigs[k:])
    result = WindowComparison(window_similarity(a, b), k, len(wa), len(wb))
    print(f"{result.similarity:.9f}")
    if result.partial:
        print(f"note: {result.note()}; the similarity is the mean over those {k} frames", file=sys.stderr)
    names = archive.channels if archive is not None else CHANNELS
    if args.cells or args.plot:
        cells = cell_similarities(a, b)
        if args.cells:
            print(format_cells(cells, channel_names=names))
        if args.plot:
            plot_cells(cells, result.similarity, args.plot, channel_names=names)
            print(f"wrote {args.plot}", file=sys.stderr)
    return 0
