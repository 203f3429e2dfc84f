"""How alike a simulated week's windows are, by the study's own protocol, beside the real week's.

    .venv/bin/python benchmarks/bench_sim_week.py [--scene texture] [--days 7] [--seed 21]

The study's protocol files (../shared/data/study/protocol) hold 567 triplets over one real week of COMS
windows (2013-01-01 to 01-07): 1,134 ground-truth similarities (N=24, B=20) with p10 0.45, median 0.71, p90
0.90. Here a simulated week is rendered at the native geometry (1500 x 1300 RGB with overlays and title band,
no events), every frame's seed-mode signature is taken in memory, windows follow the one window rule, are
split 20:20:60 in time and triplets drawn as the study drew them (services.metric.study.make_triplets); the
same percentiles are printed beside the real ones, with how many test windows have ten others above 0.80.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from tqdm import tqdm

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.frames.windows import windows_over
from satwatch.services.metric.compare import pairwise_similarity, window_signature
from satwatch.services.metric.signatures import frame_signature_from_rgb
from satwatch.services.metric.spec import GridSpec
from satwatch.services.metric.study import make_triplets, read_triplets, split_windows
from satwatch.services.simulator.scene import SceneSimulator, SimConfig
from satwatch.services.simulator.scenes import open_scene
from satwatch.services.simulator.texture import TextureSimulator

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "study"


def _percentiles(values: np.ndarray) -> str:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return f"p10 {p10:.3f} | median {p50:.3f} | p90 {p90:.3f} | max {values.max():.3f} | n {values.size}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", default="texture", choices=("texture", "procedural"))
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--seed", type=int, default=21)
    args = ap.parse_args()
    real = [
        s
        for name in ("train", "valid", "test")
        for t in read_triplets(SHARED / "protocol" / f"{name}.txt")
        for s in (t.s_xy, t.s_xz)
    ]
    print(f"| real week (study protocol) | {_percentiles(np.asarray(real))} |")
    cfg = SimConfig(
        seed=args.seed,
        days=args.days,
        events=False,
        scene=args.scene,
        width=1500,
        height=1300,
        start=datetime(2013, 1, 1, tzinfo=UTC),
        textures=str(SHARED / "raw_images"),
    )
    spec = GridSpec(24, 20, "seed")
    t0 = time.perf_counter()
    sim = open_scene(cfg)
    sigs = []
    if isinstance(sim, TextureSimulator):
        for _, images in tqdm(sim.native_frames(), total=len(sim.times), desc="render+sign", mininterval=30):
            sigs.append(frame_signature_from_rgb([images[c] for c in CHANNELS], spec))
    else:
        assert isinstance(sim, SceneSimulator)
        for fr in tqdm(sim.frames(), total=len(sim.times), desc="render+sign", mininterval=30):
            rgb = [np.repeat(p[:, :, None], 3, axis=2) for p in fr.data]
            sigs.append(frame_signature_from_rgb(rgb, spec))
    took = time.perf_counter() - t0
    idx = {t: i for i, t in enumerate(sim.times)}
    wins = windows_over(sim.times, 20, timedelta(hours=6))
    v2i = [[idx[t] + 1 for t in w] for w in wins]
    ws = [window_signature([sigs[i - 1] for i in w]) for w in v2i]
    parts = split_windows(v2i)
    rng = np.random.default_rng(0)
    got: list[float] = []
    ten_above = 0
    for name in ("train", "valid", "test"):
        members = parts[name]
        sims = pairwise_similarity([ws[i] for i in members])
        for trip in make_triplets(sims, members, rng):
            got += [trip.s_xy, trip.s_xz]
        if name == "test":
            off = sims - np.eye(len(members)) * 9
            ten_above = int(((off > 0.80).sum(axis=1) >= 10).sum())
            n_test = len(members)
    print(f"| simulated week ({args.scene}, seed {args.seed}) | {_percentiles(np.asarray(got))} |")
    print(f"test windows with ten or more others above 0.80: {ten_above} of {n_test}")
    print(f"{len(sim.times)} frames rendered and signed in {took:.0f} s; {len(wins)} windows")


if __name__ == "__main__":
    main()
