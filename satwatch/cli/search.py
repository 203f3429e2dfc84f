"""``satwatch search``: the past events most similar to a query window, and what followed them."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from satwatch.cli import add_config_argument
from satwatch.cli._common import ARCHIVE_ENCODER_DEFAULT, load_saved_index, parse_time
from satwatch.services.config import load_settings


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
        help="find the past events most similar to a window, and what followed them",
        description=(
            "Find the past events most similar to a query 6-hour window: the HNSW index proposes the "
            "nearest windows by embedding distance that ended before the query began, the exact "
            "ground-truth metric (grid histograms compared by Kolmogorov-Smirnov) re-ranks them, and "
            "overlapping windows are folded into one event. Prints date, embedding distance, ground-truth "
            "similarity and the frame times that followed each of the top --k events."
        ),
    )
    add_config_argument(parser)
    parser.add_argument(
        "--index",
        metavar="DIR",
        help="index folder (default: the detector's for this encoder, <detector.state_dir>/index, or "
        "<detector.state_dir>/indexes/ENCODER-SHA after a change of encoder)",
    )
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
    parser.add_argument("--k", type=int, default=10, help="events to print (default 10)")
    parser.add_argument(
        "--rerank",
        type=int,
        default=50,
        metavar="N",
        help="embedding candidates re-ranked by the exact metric (default 50, more when folding needs more "
        "windows to find --k events; 0 = embedding order only)",
    )
    parser.add_argument("--satellite", default="COMS-1", help="satellite of the archive (default COMS-1)")
    parser.add_argument("--only-satellite", metavar="NAME", help="keep matches from this satellite only")
    parser.add_argument("--from", dest="time_from", type=parse_time, metavar="T", help="keep matches after T")
    parser.add_argument("--to", dest="time_to", type=parse_time, metavar="T", help="keep matches before T")
    parser.add_argument("--months", type=parse_months, metavar="M,M", help="keep matches ending in these months")
    parser.add_argument(
        "--season-days",
        type=float,
        metavar="D",
        help="keep matches ending within D days of the query's time of year, in any year (e.g. 30)",
    )
    parser.add_argument(
        "--include-later",
        action="store_true",
        help="also admit windows ending after the query began (never its own frames); default: past events only",
    )
    parser.add_argument(
        "--include-overlapping",
        action="store_true",
        help="list every matching window instead of folding overlapping windows into one event",
    )
    parser.add_argument(
        "--following-hours",
        type=float,
        default=6.0,
        metavar="H",
        help="hours after each event whose frame times are reported and drawn (default 6; 0 = none)",
    )
    parser.add_argument(
        "--exclude-recent-hours",
        type=float,
        help="also drop matches ending within this many hours before the query (default: config)",
    )
    parser.add_argument(
        "--model-dir",
        metavar="DIR",
        help=f"encoder folder (default: index build's choice: {ARCHIVE_ENCODER_DEFAULT})",
    )
    parser.add_argument("--ef", type=int, help="HNSW search breadth for this query (default: the index's)")
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        help="write the query and each event as a row of thumbnails: its window, then what followed it",
    )
    parser.add_argument("--plot-channel", default="ir01", help="channel drawn by --plot (default ir01)")
    parser.add_argument("--plot-frames", type=int, default=6, help="frames of each window drawn by --plot (default 6)")
    parser.add_argument(
        "--plot-following",
        type=int,
        default=6,
        metavar="N",
        help="frames of what followed each event drawn by --plot, evenly spread (default 6)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_search)


def run_search(args: argparse.Namespace) -> int:
    from satwatch.services.detection.router import archive_route
    from satwatch.services.frames.archive import Archive
    from satwatch.services.retrieval.provenance import default_index_dir
    from satwatch.services.retrieval.query import (
        LazyEncoder,
        SearchOptions,
        find_similar,
        plot_search,
        window_at,
        window_in_folder,
    )

    settings = load_settings(args.config)
    det = settings.detector
    if args.k < 1 or args.rerank < 0:
        raise ValueError("--k must be at least 1 and --rerank at least 0")
    archive = Archive(args.archive, args.satellite)
    # index build's rule: a named folder, the detector's for this profile, a procedural simulated archive's set,
    # else the profile's encoder
    route = archive_route(det, archive.root, archive.profile, args.model_dir, index_named=bool(args.index))
    choice = route.choice
    encoder = LazyEncoder(choice.dirs.encoder, threads=2)
    # --json keeps stdout for the JSON
    print(choice.describe("encoder", encoder.card.version), file=sys.stderr if args.json else sys.stdout)
    # By default the index the detector keeps for this encoder (its own folder after a change of encoder).
    mine = (encoder.card.name, encoder.card.sha256)
    index_dir = Path(args.index) if args.index else default_index_dir(route.state_dir, mine)
    # An index saved before index_ef was raised keeps its old breadth; search at least as wide as configured.
    index = load_saved_index(index_dir, det.index_save_every, ef=args.ef)
    if args.ef is None:
        index.ef = max(index.ef, det.index_ef)
    size = det.window_size or archive.profile.window_frames
    if args.time is not None:
        query = window_at(archive, args.time, size, det.min_frames_for_search)
    else:
        query = window_in_folder(Path(args.window), archive, size)
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
        season_days=args.season_days,
        before_query=not args.include_later,
        fold=not args.include_overlapping,
        following_hours=args.following_hours,
    )
    hits = find_similar(index_dir, index, archive, query, encoder, det, options)
    rows = [
        {
            "rank": i + 1,
            "window_id": h.record.window_id,
            "satellite": h.record.satellite,
            "start": h.record.start.isoformat(),
            "end": h.record.end.isoformat(),
            "distance": h.distance,
            "similarity": h.similarity,
            "following": [t.isoformat() for t in h.following],
        }
        for i, h in enumerate(hits)
    ]
    if args.json:
        print(json.dumps({"query": query.label, "matches": rows}, indent=2))
    else:
        what = ("window" if args.include_overlapping else "event") + ("" if len(rows) == 1 else "s")
        print(f"query {query.label}: {len(index):,} windows indexed, {len(rows)} {what}")
        print(
            f"{'rank':>4}  {'window start':<17} {'window end':<17} {'satellite':<9} {'distance':>9} {'similarity':>10}"
        )
        for rank, h in enumerate(hits, 1):
            sim = f"{h.similarity:.6f}" if h.similarity is not None else "-"
            print(
                f"{rank:>4}  {h.record.start:%Y-%m-%d %H:%M} {h.record.end:%Y-%m-%d %H:%M} "
                f"{h.record.satellite:<9} {h.distance:>9.4f} {sim:>10}"
            )
            if args.following_hours > 0:
                print(f"{'':>6}{following_line(h.following, args.following_hours)}")
    if args.plot:
        plot_search(args.plot, query, hits, archive, args.plot_channel, args.plot_frames, args.plot_following)
        print(f"wrote {args.plot}")
    return 0


def following_line(times: tuple[datetime, ...], hours: float, per_line: int = 12) -> str:
    """The frame times that followed an event, HH:MM, a dozen to a line (gaps in the archive show as such)."""
    if not times:
        return f"then: no frame in the {hours:g} h after it"
    head = f"then {len(times)} frames in {hours:g} h:"
    stamps = [f"{t:%H:%M}" for t in times]
    lines = [" ".join(stamps[i : i + per_line]) for i in range(0, len(stamps), per_line)]
    return head + " " + ("\n" + " " * (7 + len(head))).join(lines)
