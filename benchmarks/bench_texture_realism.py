"""Real-texture scene against real COMS frames (and the procedural scene), per channel, side by side.

    .venv/bin/python benchmarks/bench_texture_realism.py [--days 2] [--seed 11]

Real: the study's 25 frames (../shared/data/study/raw_images, 2011-03-03 06:45-13:15 UTC), shrunk by the
study's preprocessing. Simulated: the same hours of the same date over ``--days`` days (normal weather, no
events), shrunk frames, for the texture and the procedural scene. Prints the table BENCHMARKS.md holds.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import CHANNELS
from satwatch.services.simulator.realism import compare, table
from satwatch.services.simulator.scene import SimConfig
from satwatch.services.simulator.scenes import open_scene

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "study" / "raw_images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--real", type=Path, default=REAL)
    ap.add_argument("--scenes", default="texture,procedural", help="comma-separated scenes to compare")
    args = ap.parse_args()
    real = list(Archive(args.real).frames())
    rows = []
    for scene in args.scenes.split(","):
        cfg = SimConfig(
            seed=args.seed,
            days=args.days,
            events=False,
            scene=scene,
            start=datetime(2011, 3, 3, tzinfo=UTC),
            textures=str(args.real),
        )
        t0 = time.perf_counter()
        sim = open_scene(cfg)
        # The real frames' hours of each simulated day, so the sun stands where it stood for them.
        hours = {(f.time.hour, f.time.minute) for f in real}
        frames = [f for f in sim.frames() if (f.time.hour, f.time.minute) in hours]
        took = time.perf_counter() - t0
        print(f"{scene}: {len(frames)} frames kept of {len(sim.times)} in {took:.1f} s")
        rows += [(scene, c) for c in compare(real, frames, CHANNELS)]
    rows.sort(key=lambda r: CHANNELS.index(r[1].real.channel))
    print(table(rows))


if __name__ == "__main__":
    main()
