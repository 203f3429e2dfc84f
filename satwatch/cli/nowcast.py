"""``satwatch nowcast``: the next hours from analogs, persistence and optical flow, verified where the archive
holds what happened."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from satwatch.cli import add_config_argument
from satwatch.cli._common import ARCHIVE_ENCODER_DEFAULT, parse_time


def skill_plot_path(plot: str) -> Path:
    """Where --plot's skill-by-lead picture goes: beside the forecasts' picture."""
    p = Path(plot)
    return p.with_name(p.stem + "-skill" + (p.suffix or ".png"))


def register(subparsers: Any) -> None:
    from satwatch.services.nowcast.interface import DEFAULT_METHODS, METHODS

    parser = subparsers.add_parser(
        "nowcast",
        help="predict the next hours from similar past windows, beside persistence and optical flow",
        description=(
            "Issue nowcasts for the next --hours (every frame interval, 15 min .. 3 h for COMS) from the window "
            "ending at --time: 'analog' is the similarity-weighted composite of what followed the --k most "
            "similar past windows (exact ground-truth metric over --past, default the archive itself, only "
            "windows whose following hours ended before the query window began); 'analog_change' adds their "
            "weighted change to the latest frame; 'analog_blend' is the latest frame pulled towards the analogs "
            "by a weight per lead fitted on a development period (--blend, default the texture-scene fit), "
            "'analog_flow_blend' the same from the optical-flow forecast (--flow-blend); "
            "'persistence' repeats the latest frame; 'optical_flow' is "
            "pysteps' Lucas-Kanade motion + semi-Lagrangian extrapolation (needs the [nowcast] extra). Where "
            "the archive holds the frames that followed, each forecast is verified with pysteps' scores on "
            "ir01: CSI and FSS of cold cloud (<= 235 K), MAE in kelvin, and the study's cell similarity."
        ),
    )
    add_config_argument(parser)
    parser.add_argument("--archive", required=True, metavar="DIR", help="archive holding the query window")
    parser.add_argument("--past", metavar="DIR", help="archive to find analogs in (default: --archive)")
    parser.add_argument(
        "--index",
        metavar="DIR",
        help="find analogs with the similarity index built from --archive (HNSW + exact re-rank) instead of "
        "scanning the archive with the exact metric; for archives of months and more",
    )
    parser.add_argument(
        "--model-dir",
        metavar="DIR",
        help=f"encoder of --index (default: index build's choice: {ARCHIVE_ENCODER_DEFAULT})",
    )
    parser.add_argument("--satellite", default="COMS-1", help="satellite profile of the archives (default COMS-1)")
    parser.add_argument("--time", required=True, type=parse_time, metavar="T", help="issue time: a frame time (UTC)")
    parser.add_argument("--to", type=parse_time, metavar="T", help="also issue at later frame times up to T")
    parser.add_argument(
        "--every", type=float, default=1.0, metavar="HOURS", help="interval between issue times with --to (default 1)"
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, from {', '.join(METHODS)} (default: {', '.join(DEFAULT_METHODS)})",
    )
    parser.add_argument("--k", type=int, default=5, help="analogs (default 5)")
    parser.add_argument("--hours", type=float, default=3.0, help="how far ahead (default 3)")
    parser.add_argument(
        "--cells", action="store_true", help="also score the analogs' per-cell histogram composite (analog_cells)"
    )
    parser.add_argument(
        "--blend",
        metavar="FILE",
        help="analog_blend's weights per lead (JSON, as benchmarks/bench_nowcast.py --weights-out writes them)",
    )
    parser.add_argument(
        "--flow-blend",
        metavar="FILE",
        help="analog_flow_blend's weights per lead (JSON; the -flow file bench_nowcast.py --weights-out writes)",
    )
    parser.add_argument("--no-verify", action="store_true", help="do not score against the archive's later frames")
    parser.add_argument("--plot", metavar="OUT.png", help="draw the forecasts at 1, 2, 3 h (and skill by lead)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run_nowcast)


def run_nowcast(args: argparse.Namespace) -> int:
    from satwatch.services.frames.archive import Archive
    from satwatch.services.nowcast.blend import BlendWeights
    from satwatch.services.nowcast.run import NowcastOptions, nowcast_report
    from satwatch.services.nowcast.verify import skill_table

    archive = Archive(args.archive, args.satellite)
    archive.require_frames()
    past = Archive(args.past, args.satellite) if args.past else None
    options = NowcastOptions(
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        k=args.k,
        hours=args.hours,
        cell_histograms=args.cells,
        blend=BlendWeights.from_json(Path(args.blend).read_text()) if args.blend else None,
        flow_blend=BlendWeights.from_json(Path(args.flow_blend).read_text()) if args.flow_blend else None,
    )
    every = timedelta(hours=args.every) if args.to else None
    find = None
    if args.index:
        from satwatch.services.config import load_settings
        from satwatch.services.nowcast.indexed import IndexAnalogs

        if past is not None:
            raise ValueError("--index finds analogs in the archive it was built from; leave out --past")
        det = load_settings(args.config).detector
        find = IndexAnalogs(args.index, archive, det, args.k, args.hours, args.model_dir)
        # --json keeps stdout for the JSON
        print(find.choice.describe("encoder", find.encoder.card.version), file=sys.stderr if args.json else sys.stdout)
    report = nowcast_report(
        archive, archive.profile, options, args.time, args.to, every, past, not args.no_verify, find
    )
    run = report.last
    scores = report.board.table() if report.board is not None else []
    if args.plot:
        from satwatch.services.nowcast.plot import plot_run, plot_skill

        plot_run(run, archive, args.plot)
        if scores:
            plot_skill(scores, skill_plot_path(args.plot))
    if args.json:
        out = {
            "issued": run.input.issued.isoformat(),
            "issue_times": report.issued,
            "analogs": [{"end": a.end.isoformat(), "similarity": a.similarity} for a in run.analogs],
            "skipped": run.skipped,
            "scores": [
                {
                    "method": s.method,
                    "lead_minutes": int(s.lead.total_seconds() // 60),
                    "cases": s.cases,
                    "csi": s.csi,
                    "fss": s.fss,
                    "mae_k": s.mae_k,
                    "cell_similarity": s.cell_similarity,
                }
                for s in scores
            ],
        }
        print(json.dumps(out, indent=2, allow_nan=True))
        return 0
    last = f"{run.input.issued:%Y-%m-%d %H:%MZ}"
    print(
        f"nowcast {archive.satellite} from the window ending {last} ({len(run.input.times)} frames), "
        f"{report.issued} issue time(s), leads {run.input.leads[0]} .. {run.input.leads[-1]}"
    )
    via = "the index" if args.index else "the exact metric"
    for a in run.analogs:
        print(f"  analog ({via}): window ending {a.end:%Y-%m-%d %H:%MZ}  similarity {a.similarity:.3f}")
    for name, why in run.skipped.items():
        print(f"  {name}: not issued ({why})")
    if scores:
        print(
            f"verified against the archive ({report.verified} forecast fields); ir01, cold cloud <= 235 K, "
            f"FSS over 9 px"
        )
        print(skill_table(scores))
    elif not args.no_verify:
        print("nothing to verify: the archive holds no frame after the issue time")
    if args.plot:
        print(f"plot: {args.plot}" + (f" and {skill_plot_path(args.plot)}" if scores else ""))
    return 0
