"""``satwatch search``: the past windows most similar to a query window, by embedding and exact metric."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from satwatch.cli import add_config_argument
from satwatch.services.config import load_settings


def parse_time(text: str) -> datetime:
    """ISO 8601 (``2012-10-27T06:45Z``) or KMA's ``YYYYMMDDHHMM``; naive times are taken as UTC."""
    s = text.strip()
    try:
        t = datetime.strptime(s, "%Y%m%d%H%M") if s.isdigit() else datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use e.g. 2012-10-27T06:45Z)") from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def parse_months(text: str) -> set[int]:
    """Comma-separated months 1-12, e.g. ``6,7,8`` for boreal summer."""
    try:
        months = {int(m) for m in text.split(",") if m.strip()}
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"months must be numbers 1-12, got {text!r}") from exc
    if not months or not all(1 <= m <= 12 for m in months):
        raise argparse.ArgumentTypeError(f"months must be numbers 1-12, got {text!r}")
    return months


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find the past windows most similar to a window",
        description=(
            "Find the past 6-hour windows most similar to a query window: the HNSW index proposes the "
            "--rerank nearest windows by embedding distance (never windows overlapping the query in time), "
            "then the exact ground-truth metric (grid histograms compared by Kolmogorov-Smirnov) re-ranks "
            "them. Prints date, embedding distance and ground-truth similarity of the top --k."
        ),
    )
    add_config_argument(parser)
    parser.add_argument("--index", metavar="DIR", help="index folder (default: <detector.state_dir>/index)")
    parser.add_argument(
        "--archive", required=True, metavar="DIR", help="archive the index was built from (frames of the matches)"
    )
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument(
        "--time", type=parse_time, metavar="T", help="query the archive window ending at frame time T (UTC)"
    )
    query.add_argument(
        "--window",
        metavar="DIR",
        help="query a window given as a folder: KMA-named PNGs (its last window_size frames) "
        "or the study layout image_1..image_K/{ir01,ir02,swir,wv}.png",
    )
    parser.add_argument("--k", type=int, default=10, help="matches to print (default 10)")
    parser.add_argument(
        "--rerank",
        type=int,
        default=50,
        metavar="N",
        help="embedding candidates re-ranked by the exact metric (default 50; 0 = embedding order only)",
    )
    parser.add_argument("--satellite", default="COMS-1", help="satellite of the archive (default COMS-1)")
    parser.add_argument("--only-satellite", metavar="NAME", help="keep matches from this satellite only")
    parser.add_argument("--from", dest="time_from", type=parse_time, metavar="T", help="keep matches after T")
    parser.add_argument("--to", dest="time_to", type=parse_time, metavar="T", help="keep matches before T")
    parser.add_argument("--months", type=parse_months, metavar="M,M", help="keep matches ending in these months")
    parser.add_argument(
        "--exclude-recent-hours",
        type=float,
        help="also drop matches ending within this many hours before the query (default: config)",
    )
    parser.add_argument("--model-dir", metavar="DIR", help="encoder folder (default: config, else packaged)")
    parser.add_argument("--ef", type=int, help="HNSW search breadth for this query (default: the index's)")
    parser.add_argument(
        "--plot", metavar="OUT.png", help="write the query window and its matches as an image, a row per window"
    )
    parser.add_argument("--plot-channel", default="ir01", help="channel drawn by --plot (default ir01)")
    parser.add_argument("--plot-frames", type=int, default=10, help="frames per row in --plot (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_search)


def run_search(args: argparse.Namespace) -> int:
    from satwatch.services.frames.archive import Archive
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.retrieval.index import SimilarityIndex
    from satwatch.services.retrieval.provenance import default_index_dir
    from satwatch.services.retrieval.query import SearchOptions, find_similar, window_at, window_in_folder

    settings = load_settings(args.config)
    det = settings.detector
    if args.k < 1 or args.rerank < 0:
        raise ValueError("--k must be at least 1 and --rerank at least 0")
    index_dir = Path(args.index) if args.index else default_index_dir(det.state_dir)
    index = SimilarityIndex.load(index_dir, ef=args.ef)
    archive = Archive(args.archive, args.satellite)
    size = det.window_size or archive.profile.window_frames
    if args.time is not None:
        query = window_at(archive, args.time, size, det.min_frames_for_search)
    else:
        query = window_in_folder(Path(args.window), archive, size)
    encoder = FrameEncoder.load(args.model_dir or det.model_dir, threads=2)
    time_range = None
    if args.time_from or args.time_to:
        time_range = (
            args.time_from or datetime(1900, 1, 1, tzinfo=UTC),
            args.time_to or datetime(2200, 1, 1, tzinfo=UTC),
        )
    recent = det.exclude_recent_hours if args.exclude_recent_hours is None else args.exclude_recent_hours
    options = SearchOptions(
        k=args.k,
        rerank=args.rerank,
        exclude_recent_hours=recent,
        satellite=args.only_satellite,
        time_range=time_range,
        months=args.months,
    )
    hits = find_similar(index_dir, index, archive, query, encoder, det, options)
    frames, label = query.frames, query.label
    rows = [
        {
            "rank": i + 1,
            "window_id": h.record.window_id,
            "satellite": h.record.satellite,
            "start": h.record.start.isoformat(),
            "end": h.record.end.isoformat(),
            "distance": h.distance,
            "similarity": h.similarity,
        }
        for i, h in enumerate(hits)
    ]
    if args.json:
        print(json.dumps({"query": label, "matches": rows}, indent=2))
    else:
        print(f"query {label}: {len(index):,} windows indexed, {len(rows)} matches")
        print(
            f"{'rank':>4}  {'window start':<17} {'window end':<17} {'satellite':<9} {'distance':>9} {'similarity':>10}"
        )
        for h, r in zip(hits, rows, strict=True):
            sim = f"{h.similarity:.6f}" if h.similarity is not None else "-"
            print(
                f"{r['rank']:>4}  {h.record.start:%Y-%m-%d %H:%M} {h.record.end:%Y-%m-%d %H:%M} "
                f"{h.record.satellite:<9} {h.distance:>9.4f} {sim:>10}"
            )
    if args.plot:
        plot_matches(args.plot, frames, label, hits, archive, args.plot_channel, args.plot_frames)
        print(f"wrote {args.plot}")
    return 0


def _thumb(plane: np.ndarray, target: int = 96) -> np.ndarray:
    """Downsample a plane by an integer step so its longer side is about ``target`` pixels."""
    step = max(1, max(plane.shape) // target)
    return plane[::step, ::step]


def plot_matches(
    out: str | Path, query: np.ndarray, label: str, hits: list[Any], archive: Any, channel: str, per_row: int
) -> None:
    """The query window and each match as a row of thumbnails of ``channel``, frames evenly sampled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from satwatch.services.frames.frame import shrink

    c = archive.channels.index(channel) if channel in archive.channels else 0
    rows: list[tuple[str, list[np.ndarray]]] = []

    def sample(n: int) -> list[int]:
        return sorted({int(round(x)) for x in np.linspace(0, n - 1, min(per_row, n))})

    rows.append((f"query\n{label}", [_thumb(query[i, c]) for i in sample(len(query))]))
    for rank, h in enumerate(hits, 1):
        times = list(h.record.frame_times)
        try:
            planes = [_thumb(shrink(archive.load(times[i])).data[c]) for i in sample(len(times))]
        except (KeyError, FileNotFoundError, OSError):
            continue  # frames gone from the archive: skip the row rather than fail the search
        sim = f" sim {h.similarity:.3f}" if h.similarity is not None else ""
        rows.append((f"#{rank} {h.record.end:%Y-%m-%d %H:%M}\nd {h.distance:.3f}{sim}", planes))
    ncol = max(len(p) for _, p in rows)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(1.1 * ncol + 1.6, 1.2 * len(rows)), squeeze=False)
    for r, (text, planes) in enumerate(rows):
        for j in range(ncol):
            ax = axes[r][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(planes):
                ax.imshow(planes[j], cmap="gray", vmin=0, vmax=255)
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(text, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(f"{channel}: query and matches, {ncol} frames per window", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
