"""Frame-vector store: what a cold search pays to open it and read its query's frames.

    python benchmarks/bench_frame_vectors.py [--days 30] [--dim 48384] [--dir DIR]

Writes a store of ``--days`` of 15-minute frames (the first run only; chunks of 32 frames, as
``index build`` writes them) with vectors of the shipped v2 encoder's per-frame length (48,384 numbers: a
frame's per-cell histograms), then, in fresh processes, opens it and reads one window's 20 frames, as
``satwatch search`` does for its query: wall and CPU seconds and the process's peak memory, median of 3.
The vectors' values do not matter here (random), only their number and layout.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

T0 = datetime(2024, 7, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)


def write(directory: Path, frames: int, dim: int) -> None:
    from satwatch.services.retrieval.index import FrameVectorStore

    store = FrameVectorStore(directory, dim)
    rng = np.random.default_rng(0)
    for lo in range(0, frames, 32):
        times = [T0 + i * STEP for i in range(lo, min(frames, lo + 32))]
        store.put_many("COMS-1", times, rng.random((len(times), dim), dtype=np.float32))


def once(directory: Path, frames: int, dim: int) -> dict[str, float]:
    """Open the store and read the 20 frames of a window in the middle of the month (run in a fresh process)."""
    from satwatch.services.retrieval.index import FrameVectorStore

    c0, t0 = time.process_time(), time.perf_counter()
    store = FrameVectorStore(directory, dim)
    mid = frames // 2
    vecs = store.get_many("COMS-1", [T0 + i * STEP for i in range(mid, mid + 20)])
    assert vecs.shape == (20, dim)
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--dim", type=int, default=48_384)
    ap.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "satwatch_bench_fv"))
    ap.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    frames, directory = int(args.days * 96), Path(args.dir)
    if args.once:
        print(json.dumps(once(directory, frames, args.dim)))
        return
    if not any(directory.glob("chunk-*.npz")):
        write(directory, frames, args.dim)
    size = sum(p.stat().st_size for p in directory.glob("chunk-*.npz")) / 1e6
    runs = []
    for _ in range(3):
        flags = ["-S"] if sys.flags.no_site else []  # run as this process was (an older tree is run with -S)
        cmd = [sys.executable, *flags, __file__, "--once", "--days", str(args.days), "--dim", str(args.dim)]
        cmd += ["--dir", str(directory)]
        runs.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; store: {frames} frames, {size:.0f} MB")
    for key in ("wall_s", "cpu_s", "peak_rss_mb"):
        print(f"{key}: median {statistics.median(r[key] for r in runs):.3f} (runs: {[round(r[key], 3) for r in runs]})")


if __name__ == "__main__":
    main()
