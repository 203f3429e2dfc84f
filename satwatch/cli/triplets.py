"""``satwatch triplets``: study-format windows and train/valid/test triplets from an archive."""

from __future__ import annotations

import argparse

from satwatch.cli import add_config_argument
from satwatch.cli._common import add_grid_arguments, spec_from_args
from satwatch.services.frames.archive import Archive
from satwatch.services.metric.groundtruth import SignatureCache
from satwatch.services.metric.study import build_study


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.2,0.2,0.6, got {text!r}") from exc
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.2,0.2,0.6, got {text!r}")
    return parts[0], parts[1], parts[2]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``triplets`` subcommand."""
    p = subparsers.add_parser(
        "triplets",
        help="generate the study's training triplets (anchor, near, far + ground-truth similarities) from an archive",
        description=(
            "Follow the study's protocol on an archive of a satellite's images (named as its profile says, in any "
            "sub-folders): cut windows by the one window rule (a window ending at a frame holds the latest "
            "--window frames within the profile's window span, 20 frames within 6 hours for COMS-1, so a window "
            "may span a missing frame), split them by time into contiguous train/valid/test blocks (20:20:60; "
            "windows sharing a frame with an earlier split are dropped so nothing leaks), and for each anchor "
            "window draw a near window (among the most similar of its split) and a far window (less similar than "
            "the near one), with both ground-truth similarities. Writes OUT/video2image.txt, OUT/frames.txt "
            "(image id -> time) and OUT/{train,valid,test}.txt as 'x<TAB>y<TAB>z<TAB>s_xy<TAB>s_xz', window "
            "numbers being video2image.txt line numbers."
        ),
        epilog="Example: satwatch triplets --archive DATA --out study --stride 4",
    )
    add_config_argument(p)
    p.add_argument("--archive", required=True, metavar="DIR", help="archive of the satellite's images")
    p.add_argument("--satellite", default="COMS-1", help="satellite profile of the archive (default COMS-1)")
    p.add_argument("--area", help="area (sector) of the archive, when it holds several")
    p.add_argument("--out", required=True, metavar="DIR", help="study directory to write (created if missing)")
    add_grid_arguments(p)
    p.add_argument("--window", type=int, metavar="K", help="frames in a window (default: the profile's, 20 for COMS-1)")
    p.add_argument("--stride", type=int, default=1, metavar="S", help="a window ends at every S-th frame (default 1)")
    p.add_argument(
        "--max-span-hours",
        type=float,
        metavar="H",
        help="also skip windows whose first and last frames are more than H hours apart (the window rule "
        "already keeps every window within the profile's span)",
    )
    p.add_argument(
        "--per-anchor", type=int, default=1, metavar="T", help="triplets drawn per anchor window (default 1)"
    )
    p.add_argument(
        "--near-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="the near window is drawn from this fraction of the most similar windows of the split (default 0.1)",
    )
    p.add_argument(
        "--split", type=_ratios, default=(0.2, 0.2, 0.6), metavar="TR,VA,TE", help="split ratios (default 0.2,0.2,0.6)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed for drawing triplets (default 0)")
    p.add_argument(
        "--export-images",
        action="store_true",
        help="also lay the frames out as OUT/images/image_{id}/{ir01,ir02,swir,wv}.png (hard links where possible)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    archive = Archive(args.archive, args.satellite, args.area)
    archive.require_frames()
    result = build_study(
        archive,
        args.out,
        spec_from_args(args),
        window=args.window or archive.profile.window_frames,
        stride=args.stride,
        max_span_hours=args.max_span_hours,
        per_anchor=args.per_anchor,
        near_fraction=args.near_fraction,
        ratios=args.split,
        seed=args.seed,
        cache=SignatureCache(args.cache) if args.cache else None,
        workers=args.workers,
        export=args.export_images,
        progress=not args.quiet,
    )
    print(
        f"{result.windows} windows of {args.window or archive.profile.window_frames} frames within "
        f"{archive.profile.window_hours:g} h over {result.frames} frames ({result.dropped} dropped at split "
        "boundaries); "
        f"triplets: train {result.triplets['train']}, valid {result.triplets['valid']}, test {result.triplets['test']}"
        f" -> {args.out}"
    )
    return 0
