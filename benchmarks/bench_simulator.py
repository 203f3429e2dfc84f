"""Benchmark the scene simulator: frame generation speed, calibration against real COMS, example strip.

Run: python benchmarks/bench_simulator.py [--strip docs/img/simulator_strip.png]
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tqdm import tqdm  # noqa: E402

from satwatch.services.frames.frame import CHANNELS  # noqa: E402
from satwatch.services.simulator.calibration import ENH_TIME, compare_with_coms, coms_data_dir  # noqa: E402
from satwatch.services.simulator.scene import SceneSimulator, SimConfig  # noqa: E402


def time_frames(width: int, height: int, n: int) -> float:
    """Mean seconds per frame (after the first) for a stream with events."""
    sim = SceneSimulator(SimConfig(seed=7, width=width, height=height, days=2.0))
    it = sim.frames()
    next(it)
    t0 = time.perf_counter()
    for _ in tqdm(range(n), desc=f"{width}x{height}", unit="frame"):
        next(it)
    return (time.perf_counter() - t0) / n


def strip(path: Path) -> None:
    """4 channels x 6 times, including a vortex, convection and a sensor fault."""
    cfg = SimConfig(seed=7, width=375, height=300, days=2.0, start=datetime(2024, 7, 1, tzinfo=UTC))
    sim = SceneSimulator(cfg)
    wanted: list[int] = [8]
    for kind in ("vortex", "convection", "striping", "calibration_jump", "missing_lines"):
        ev = next((e for e in sim.events if e.kind == kind), None)
        if ev is not None:
            mid = ev.start + (ev.end - ev.start) / 2
            wanted.append(min(range(len(sim.times)), key=lambda i: abs(sim.times[i] - mid)))
    wanted = sorted(set(wanted))[:6]
    frames = {i: f for i, f in enumerate(sim.frames()) if i in wanted}
    fig, axes = plt.subplots(4, len(wanted), figsize=(1.6 * len(wanted), 7.2))
    for j, i in enumerate(wanted):
        f = frames[i]
        kinds = ", ".join(e.kind for e in sim.labels_at(f.time)) or "normal"
        for c, name in enumerate(CHANNELS):
            ax = axes[c, j]
            ax.imshow(f.data[c], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name)
        axes[0, j].set_title(f"{f.time:%d %H:%M}Z\n{kinds}", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"strip written to {path} ({path.stat().st_size // 1024} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--strip", type=Path, help="also write the example strip PNG here")
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], help="seeds for the calibration runs")
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    for w, h, n in ((375, 300, 96), (1500, 1300, 12)):
        print(f"{w}x{h}: {time_frames(w, h, n) * 1000:.1f} ms/frame")
    data = coms_data_dir()
    if data is None:
        print("real COMS samples not found: calibration skipped")
    else:
        for seed in args.seeds:
            cfg = replace(SimConfig(seed=seed, start=ENH_TIME, days=1.0), events=False)
            for c in compare_with_coms(data, cfg, every=4):
                print(
                    f"\nseed {seed} {c.channel}: Wasserstein-1 {c.wasserstein_k:.2f} K, KS {c.ks:.3f}, "
                    f"mean sim {c.sim_mean_k:.1f} K vs real {c.real_mean_k:.1f} K"
                )
                print(c.table())
    if args.strip:
        strip(args.strip)


if __name__ == "__main__":
    main()
