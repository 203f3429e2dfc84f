"""``satwatch index build|info``: build the similar-event index from an archive, or describe one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from satwatch.cli import add_config_argument
from satwatch.cli._common import ARCHIVE_ENCODER_DEFAULT, load_saved_index
from satwatch.services.config import load_settings
from satwatch.services.detection.journal import pending_windows
from satwatch.services.retrieval.provenance import BUILD_FILE, default_index_dir


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "index",
        help="build or inspect the similar-event (HNSW) index",
        description=(
            "The similar-event index holds one vector per 6-hour window (what the encoder's card says: for v2 "
            "and v3 a map of the window's mean cell histograms, for v1 the mean of its frames' embeddings) in an "
            "HNSW graph, with each window's satellite, start, end and frame times."
        ),
    )
    # --config belongs to each action (a parent-level option would be reset by the action's default).
    sub = parser.add_subparsers(dest="index_command", metavar="ACTION", required=True)

    build = sub.add_parser(
        "build",
        help="embed every window of an archive into the index",
        description=(
            "Embed every window of a KMA-named archive and add it to the index. Each frame is encoded once "
            "and its embedding cached beside the index, so a rerun (or an interrupted build) skips frames "
            "and windows already done. HNSW parameters come from the [detector] config section "
            "(index_m, index_ef_construction, index_ef, index_max_elements)."
        ),
    )
    add_config_argument(build)
    build.add_argument("--archive", required=True, metavar="DIR", help="archive folder of KMA-named PNG files")
    build.add_argument(
        "--out",
        metavar="DIR",
        help="index folder (default: the detector's for this encoder, <detector.state_dir>/index, or "
        "<detector.state_dir>/indexes/ENCODER-SHA after a change of encoder; under <detector.state_dir>/SATELLITE "
        "when detector.model_dirs gives each satellite its own models)",
    )
    build.add_argument(
        "--model-dir",
        metavar="DIR",
        help=f"folder with encoder.onnx + card (default: {ARCHIVE_ENCODER_DEFAULT})",
    )
    build.add_argument("--satellite", default="COMS-1", help="satellite name recorded for the archive's windows")
    build.add_argument("--stride", type=int, default=1, help="index every N-th window (default 1: every window)")
    build.add_argument("--workers", type=int, default=2, help="threads for PNG decoding and ONNX inference (default 2)")
    build.add_argument("--batch", type=int, default=32, help="frames encoded per ONNX call (default 32)")
    build.add_argument(
        "--min-frames",
        type=int,
        help="also index part-filled windows holding at least this many frames (default: full windows only; "
        "a window is the latest 20 frames within 6 hours for COMS-1, so missing frames are spanned)",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.set_defaults(func=run_build)

    info = sub.add_parser(
        "info",
        help="print size, parameters, time coverage and memory of an index",
        description="Describe a saved index: windows, satellites, time coverage, HNSW parameters and memory.",
    )
    add_config_argument(info)
    info.add_argument("--index", metavar="DIR", help="index folder (default: <detector.state_dir>/index)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=run_info)


def run_build(args: argparse.Namespace) -> int:
    from satwatch.services.detection.router import archive_route
    from satwatch.services.frames.archive import Archive
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.retrieval.build import BuildPlan, build_index

    settings = load_settings(args.config)
    det = settings.detector
    archive = Archive(args.archive, args.satellite)
    # The rule of search and evaluate: a named folder; the detector's folder for this profile (model_dirs or
    # model_dir); else a procedural simulated archive's set (the one its simulator tells the detector to serve),
    # any other archive its satellite profile's encoder (COMS-1: v3).
    route = archive_route(det, archive.root, archive.profile, args.model_dir, index_named=bool(args.out))
    choice = route.choice
    encoder = FrameEncoder.load(choice.dirs.encoder, threads=args.workers)
    print(choice.describe("encoder", encoder.card.version))
    # By default the index the detector keeps for this encoder (its own folder after a change of encoder).
    mine = (encoder.card.name, encoder.card.sha256)
    out = Path(args.out) if args.out else default_index_dir(route.state_dir, mine)

    def announce(plan: BuildPlan) -> None:
        print(
            f"archive {archive.root}: {len(archive)} frames, {plan.windows} windows of up to {plan.window_size} "
            f"frames (stride {args.stride}); {plan.already} already indexed, {plan.todo} to add"
        )

    result = build_index(
        archive, encoder, out, det, stride=args.stride, min_frames=args.min_frames, batch=args.batch,
        workers=args.workers, progress=not args.quiet, on_plan=announce,
    )  # fmt: skip
    print(
        f"encoded {result.encoded_frames} frames, added {result.added_windows} windows; "
        f"index {out} now holds {result.index_size} windows"
    )
    return 0


def format_info(info: dict[str, Any]) -> str:
    """Human-readable lines for ``SimilarityIndex.info()``."""
    mib = info["memory_bytes_estimate"] / 2**20
    lines = [
        f"windows:        {info['size']:,}",
        f"satellites:     {', '.join(f'{s} ({n:,})' for s, n in info['satellites'].items()) or '-'}",
        f"time coverage:  {info['first_start'] or '-'} .. {info['last_end'] or '-'}",
        f"vectors:        dim {info['dim']}, space {info['space']}",
        f"HNSW:           M={info['m']} ef_construction={info['ef_construction']} ef={info['ef']} "
        f"max_elements={info['max_elements']:,}",
        f"memory:         ~{mib:,.1f} MiB estimated, room for max_elements included "
        f"({info['bytes_per_vector']:.0f} bytes per vector)",
    ]
    if "disk_bytes" in info:
        lines.append(f"on disk:        {info['disk_bytes'] / 2**20:,.1f} MiB")
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    path = Path(args.index) if args.index else default_index_dir(settings.detector.state_dir)
    index = load_saved_index(path, settings.detector.index_save_every)
    info = index.info()
    info["path"] = str(path)
    # a running detector's windows since its last snapshot: the detector adds them again on restart
    info["journal_windows"] = pending_windows(path)
    info["disk_bytes"] = sum(p.stat().st_size for p in path.glob("snap-*/*") if p.is_file())
    build_file = path / BUILD_FILE
    if build_file.is_file():
        info["build"] = json.loads(build_file.read_text())
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"index:          {path}")
        print(format_info(info))
        if info["journal_windows"]:
            print(
                f"journal:        {info['journal_windows']:,} window(s) added since this snapshot, not counted above "
                f"(the detector saves every {settings.detector.index_save_every} new windows and when it stops)"
            )
        if "build" in info:
            print(f"encoder:        {info['build'].get('encoder')} ({str(info['build'].get('encoder_sha256'))[:12]})")
    return 0
