"""Data-quality checks on labelled streams and real frames: what they flag, what they miss, what they cost.

Runs the detector's data-quality checks (``frame_findings``: the checks against the previous frames and the
pixel checks) over each archive in stream order and prints, per labelled kind, the frames flagged and those
flagged by their own kind; normal frames flagged (false alerts, per normal day at the archive's cadence);
and the cost per frame (median and p99, one thread; wall time, and the thread's CPU time, which a loaded
machine inflates less).

    python benchmarks/bench_quality.py ARCHIVE [ARCHIVE ...]         # labels.json beside each, if any
    python benchmarks/bench_quality.py --procedural                   # also the autoencoder's held-out week
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from satwatch.services.detection.quality import FrameHistory, frame_findings
from satwatch.services.training.data import FrameSet, frames_per_day, load_archive


def run(name: str, fs: FrameSet) -> None:
    history = FrameHistory()
    cost, cpu, found = [], [], []
    for i in range(len(fs)):
        frame = fs.frame(i)
        t0, c0 = time.perf_counter(), time.thread_time()
        kinds = [f.kind for f in frame_findings(history, frame)]
        cpu.append(time.thread_time() - c0)
        cost.append(time.perf_counter() - t0)
        found.append(kinds)
    normal = [i for i in range(len(fs)) if not fs.labels[i]]
    days = len(normal) / frames_per_day(fs.times)
    flagged = [i for i in normal if found[i]]
    ms, cpu_ms = np.array(cost) * 1000, np.array(cpu) * 1000
    print(f"\n{name}: {len(fs)} frames, {len(normal)} normal ({days:.1f} days)")
    print(
        f"  cost per frame: wall median {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms; "
        f"CPU median {np.median(cpu_ms):.2f} ms, p99 {np.percentile(cpu_ms, 99):.2f} ms"
    )
    print(f"  normal frames flagged: {len(flagged)} ({len(flagged) / days if days else float('nan'):.2f} per day)")
    for i in flagged[:5]:
        print(f"    {fs.times[i]:%Y-%m-%d %H:%M} {found[i]}")
    for kind in sorted({k for lab in fs.labels for k in lab}):
        idx = [i for i in range(len(fs)) if kind in fs.labels[i]]
        anyk = sum(bool(found[i]) for i in idx)
        own = sum(kind in found[i] for i in idx)
        print(f"  {kind:17s} {len(idx):4d} frames: flagged {anyk:4d}, as {kind} {own:4d}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archives", nargs="*", type=Path, help="KMA-named archives (labels.json beside them, if any)")
    p.add_argument("--procedural", action="store_true", help="also the autoencoder's held-out week and its twin")
    p.add_argument("--cache", type=Path, default=Path("var/cache/training"), help="simulated data cache")
    args = p.parse_args()
    for root in args.archives:
        run(str(root), load_archive(root, progress=False))
    if args.procedural:
        from satwatch.services.training.pipeline import autoencoder_test_frames

        events, twin = autoencoder_test_frames(args.cache)
        run("procedural held-out week (seed 1303)", events)
        run("procedural held-out week, events off", twin)


if __name__ == "__main__":
    main()
