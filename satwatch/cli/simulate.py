"""``satwatch simulate``: write a multi-day synthetic COMS-like archive with labelled events."""

from __future__ import annotations

import argparse

from satwatch.cli import add_config_argument
from satwatch.cli._common import parse_time
from satwatch.services.config import load_settings
from satwatch.services.simulator.scene import SimConfig, procedural_hint, write_archive


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand."""
    p = subparsers.add_parser(
        "simulate",
        help="write a synthetic multi-day 4-channel frame archive with labelled events",
        description=(
            "Simulate geostationary infrared imagery (channels ir01, ir02, swir, wv) as KMA-named RGB PNGs "
            "under OUT/YYYYMMDD/, with OUT/labels.json (injected events: convection, vortex, striping, "
            "missing_lines, saturated_block, calibration_jump) and OUT/simulation.json (the config). "
            "The same seed always gives byte-identical frames. Defaults come from the [simulator] config section."
        ),
    )
    add_config_argument(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--days", type=float, help="length of the stream in days (default: simulator.days, 2)")
    p.add_argument("--seed", type=int, help="random seed; same seed, same bytes (default: simulator.seed)")
    p.add_argument("--width", type=int, help="frame width in pixels (default 375; native COMS size is 1500)")
    p.add_argument("--height", type=int, help="frame height in pixels (default 300; native COMS size is 1300)")
    p.add_argument("--start", type=parse_time, metavar="T", help="UTC time of the first frame, e.g. 2024-07-01T00:00Z")
    p.add_argument("--cadence-minutes", type=int, metavar="M", help="minutes between frames (default 15)")
    p.add_argument("--no-events", action="store_true", help="normal weather only: inject no events")
    p.add_argument(
        "--geography",
        type=int,
        metavar="SEED",
        help="coastline of this seed instead of the stream's own: runs meant as one satellite's history share it",
    )
    p.add_argument(
        "--scene",
        choices=("procedural", "texture"),
        help="procedural: synthetic fields; texture: real COMS cloud fields moved, grown and faded",
    )
    p.add_argument("--textures", metavar="DIR", help="folder of real COMS frames for the texture scene")
    p.add_argument(
        "--satellite",
        help="satellite profile that names the files and labels (default COMS-1); the simulator renders COMS-1's "
        "four channels, so a profile of other channels (GK-2A, Himawari, MTSAT, GMS-5) is refused",
    )
    p.add_argument("--area", help="KMA area code used in file names (default ea040ps)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    cfg = SimConfig.from_settings(
        settings.simulator,
        seed=args.seed,
        width=args.width,
        height=args.height,
        start=args.start,
        cadence_minutes=args.cadence_minutes,
        days=args.days,
        satellite=args.satellite,
        area=args.area,
        geography=args.geography,
        scene=args.scene,
        textures=args.textures,
        events=False if args.no_events else None,
    )
    out = write_archive(cfg, args.out, progress=not args.quiet)
    print(f"wrote {cfg.n_frames} frames ({cfg.width}x{cfg.height}) to {out}")
    if cfg.scene == "procedural":
        print(procedural_hint(cfg.satellite))
    return 0
