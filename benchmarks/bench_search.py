"""`satwatch search` on a month of simulated archive: cold (a fresh process, as a user runs it) and warm
(further queries in one process, through SearchSession), with a built index and signature store.

    python benchmarks/bench_search.py --archive var/search-month/archive --index var/search-month/index

Writes the archive (`satwatch simulate --days 30`, about 3 minutes here) and builds the index
(`satwatch index build`) when they are missing. Prints wall and CPU seconds; CPU is what a query costs on a
machine shared with other jobs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--archive", default="var/search-month/archive")
    ap.add_argument("--index", default="var/search-month/index")
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--model-dir", help="encoder folder (default: the packaged encoder)")
    ap.add_argument("--cold", type=int, default=3, help="fresh-process queries")
    ap.add_argument("--warm", type=int, default=10, help="in-process queries after the first")
    args = ap.parse_args()
    archive, index = Path(args.archive), Path(args.index)
    cli = [sys.executable, "-m", "satwatch"]
    model = ["--model-dir", args.model_dir] if args.model_dir else []
    if not archive.is_dir():
        subprocess.run(
            [
                *cli,
                "simulate",
                "--out",
                str(archive),
                "--days",
                str(args.days),
                "--seed",
                "11",
                "--start",
                "2024-07-01T00:00Z",
                "--quiet",
            ],
            check=True,
        )
    subprocess.run(
        [*cli, "index", "build", "--archive", str(archive), "--out", str(index), "--quiet", *model], check=True
    )

    start = datetime(2024, 7, 1, tzinfo=UTC)
    queries = [start + timedelta(days=d, hours=h) for d, h in ((19, 12), (24, 3), (9, 6), (27, 18), (14, 9))]
    cold_wall, cold_cpu = [], []
    for t in queries[: args.cold]:
        c0, w0 = _cpu_children(), time.perf_counter()
        subprocess.run(
            [
                *cli,
                "search",
                "--archive",
                str(archive),
                "--index",
                str(index),
                "--time",
                f"{t:%Y-%m-%dT%H:%MZ}",
                "--k",
                "10",
                *model,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cold_wall.append(time.perf_counter() - w0)
        cold_cpu.append(_cpu_children() - c0)

    from satwatch.services.config import load_settings
    from satwatch.services.frames.archive import Archive
    from satwatch.services.retrieval.index import SimilarityIndex
    from satwatch.services.retrieval.query import LazyEncoder, SearchOptions, SearchSession, window_at

    det = load_settings(None).detector
    arc = Archive(archive)
    session = SearchSession(index, SimilarityIndex.load(index), arc, LazyEncoder(args.model_dir), det)
    warm_wall, warm_cpu = [], []
    times = arc.times[100:]
    for i in range(args.warm + 1):
        t = times[(i * 997) % len(times)]
        q = window_at(arc, t, 20, det.min_frames_for_search)
        c0, w0 = time.process_time(), time.perf_counter()
        session.find(q, SearchOptions())
        if i:  # the first query in the process pays for loading the compiled kernels
            warm_wall.append(time.perf_counter() - w0)
            warm_cpu.append(time.process_time() - c0)
    print(f"archive {archive}: {len(arc)} frames; index {len(session.index):,} windows")
    print(
        f"cold (fresh process, {len(cold_wall)} queries): wall {statistics.median(cold_wall):.2f} s median "
        f"(max {max(cold_wall):.2f}), CPU {statistics.median(cold_cpu):.2f} s median"
    )
    if warm_wall:
        print(
            f"warm (one process, {len(warm_wall)} queries): wall {statistics.median(warm_wall):.3f} s median "
            f"(max {max(warm_wall):.3f}), CPU {statistics.median(warm_cpu):.3f} s median (max {max(warm_cpu):.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
