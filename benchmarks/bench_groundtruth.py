"""Benchmark of the ground-truth metric: cold pair vs the C++ reference, warm pairs/s, all-pairs, sizes.

Run:  python benchmarks/bench_groundtruth.py [--synthetic] [--matrix-windows 1000] [--keep DIR]

1. Writes 40 full-size frames (1300x1500, 4 channels: 160 RGB PNGs) into a temp dir, from the scene
   simulator (or textured noise with --synthetic).
2. Compiles benchmarks/reference/gt_reference.cpp with g++ -O2 (needs libpng) and times it on the window
   pair (frames 1-20 vs 21-40), then times satwatch's seed mode on the same 160 files, decode included,
   with a 2-process pool and no cache; checks both agree to 1e-9.
3. Warm figures from cached signatures on one core: single pair calls, one query against 50 candidates,
   the all-pairs matrix of sliding windows over an archive, and pairs/s among windows sharing no frames.
4. Signature memory and on-disk cache size, extrapolated to a year of 15-minute frames.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from satwatch.services.frames import CHANNELS, write_rgb_png
from satwatch.services.groundtruth import (
    FrameSignature,
    GridSpec,
    SignatureCache,
    frame_signature,
    frame_signatures_from_paths,
    pairwise_similarity,
    similarity_from_paths,
    similarity_one_to_many,
    window_signature,
    window_similarity,
)

HERE = Path(__file__).resolve().parent
FRAMES_PER_WINDOW = 20
YEAR_FRAMES = 365 * 24 * 4


def write_frames(out: Path, count: int, synthetic: bool) -> list[list[Path]]:
    """``count`` full-size 4-channel frames as RGB PNGs; returns channel paths per frame."""
    frames: list[list[Path]] = []
    if synthetic:
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:1500, 0:1300]

        def gen() -> Iterator[np.ndarray]:
            for k in range(count):
                planes = []
                for c in range(len(CHANNELS)):
                    base = 128 + 60 * np.sin((xx + 9 * k) / (37 + 5 * c)) * np.cos((yy - 4 * k) / (53 + 3 * c))
                    planes.append(np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8))
                yield np.stack(planes)

        arrays: Iterator[np.ndarray] = gen()
    else:
        from satwatch.services.simulator import SceneSimulator, SimConfig

        cfg = SimConfig(
            width=1300, height=1500, days=count * 15 / 1440 + 1e-6, events=True, start=datetime(2024, 7, 1, tzinfo=UTC)
        )
        arrays = (f.data for f in SceneSimulator(cfg).frames())
    for k, data in enumerate(tqdm(arrays, total=count, desc="writing frames", unit="frame")):
        if k >= count:
            break
        d = out / f"frame_{k + 1:02d}"
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for c, plane in zip(CHANNELS, data, strict=True):
            p = d / f"{c}.png"
            write_rgb_png(p, plane)
            paths.append(p)
        frames.append(paths)
    return frames


def compile_reference(build: Path) -> Path | None:
    if shutil.which("g++") is None:
        print("g++ not found: skipping the C++ reference", file=sys.stderr)
        return None
    exe = build / "gt_reference"
    cmd = ["g++", "-O2", "-o", str(exe), str(HERE / "reference" / "gt_reference.cpp"), "-lpng"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"could not compile the reference (libpng-dev missing?):\n{res.stderr}", file=sys.stderr)
        return None
    return exe


def fake_signature(rng: np.random.Generator, like: FrameSignature) -> FrameSignature:
    """A signature with the real one's geometry and random monotone cumulative counts (timing only)."""
    bins, slots = like.cum.shape
    n = int(like.cell_pixels[0])
    cum = np.sort(rng.integers(0, n + 1, (bins, slots), dtype=np.int16), axis=0)
    cum[:, like.size :] = 0
    return FrameSignature(like.spec, like.shape, like.channels, cum, like.cell_pixels)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", action="store_true", help="textured noise instead of the scene simulator")
    ap.add_argument("--matrix-windows", type=int, default=1000, help="sliding windows in the all-pairs matrix")
    ap.add_argument("--distinct-windows", type=int, default=200, help="windows sharing no frames, all pairs")
    ap.add_argument("--keep", metavar="DIR", help="write the PNGs here and keep them (default: a temp dir)")
    args = ap.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_gt_"))
    data = Path(args.keep) if args.keep else tmp / "frames"
    try:
        frames = write_frames(data, 2 * FRAMES_PER_WINDOW, args.synthetic)
        wa, wb = frames[:FRAMES_PER_WINDOW], frames[FRAMES_PER_WINDOW:]
        spec = GridSpec(24, 20, "seed")

        # Compile the pair kernel once (numba caches it on disk) so timings are of the work, not the JIT.
        small = [frame_signature(np.zeros((1, 48, 48), np.uint8), spec, check_size=False)]
        window_similarity(window_signature(small), window_signature(small))

        # --- cold: C++ reference vs satwatch, same 160 files ---------------------------------------------
        cpp_sim = cpp_s = None
        exe = compile_reference(tmp)
        if exe is not None:
            paths = [str(p) for f in [*wa, *wb] for p in f]
            t = time.perf_counter()
            out = subprocess.run(
                [str(exe), "24", "20", str(FRAMES_PER_WINDOW), str(len(CHANNELS)), *paths],
                check=True,
                capture_output=True,
                text=True,
            )
            cpp_s = time.perf_counter() - t
            cpp_sim = float(out.stdout.split()[-1])
        timings = {}
        for workers in (1, 2):
            t = time.perf_counter()
            sim = similarity_from_paths(wa, wb, spec, None, workers=workers)
            timings[workers] = time.perf_counter() - t
        print("\n== cold pair: 2 windows x 20 frames x 4 channels = 160 PNGs of 1300x1500, decode included ==")
        print(f"satwatch seed mode, 2-process pool: {timings[2]:.2f} s   (1 process: {timings[1]:.2f} s)")
        if cpp_s is not None and cpp_sim is not None:
            diff = abs(sim - cpp_sim)
            print(f"C++ reference (g++ -O2):            {cpp_s:.2f} s   speed-up {cpp_s / timings[2]:.1f}x")
            print(f"similarity satwatch {sim:.12f}  C++ {cpp_sim:.12f}  |diff| {diff:.2e}  (bar 1e-9)")
            if diff > 1e-9:
                print("MISMATCH against the C++ reference", file=sys.stderr)
                return 1

        # --- signature sizes ---------------------------------------------------------------------------
        cache = SignatureCache(tmp / "cache")
        sigs = frame_signatures_from_paths(frames, spec, cache, workers=2)
        files = list((tmp / "cache").rglob("*.npz"))
        disk = float(np.mean([f.stat().st_size for f in files]))
        t = time.perf_counter()
        warm_sigs = frame_signatures_from_paths(frames, spec, cache, workers=1)
        load_s = (time.perf_counter() - t) / len(frames)
        assert cache.hits == len(frames)
        assert window_similarity(window_signature(warm_sigs[:20]), window_signature(warm_sigs[20:])) == sim
        print("\n== signatures ==")
        print(f"in memory per frame (4 channels, 24x24 cells, 20 cumulative bins, int16): {sigs[0].nbytes:,} B")
        print(f"on disk per frame (compressed npz): {disk:,.0f} B; load from cache {load_s * 1e3:.2f} ms")
        print(
            f"a year of 15-minute frames ({YEAR_FRAMES:,}): {YEAR_FRAMES * disk / 2**30:.2f} GiB on disk, "
            f"{YEAR_FRAMES * sigs[0].nbytes / 2**30:.2f} GiB in memory"
        )

        # --- warm: from cached signatures, one core ----------------------------------------------------
        rng = np.random.default_rng(1)
        print("\n== warm: from cached signatures, one core (single-threaded kernel) ==")
        distinct = [
            window_signature([fake_signature(rng, sigs[0]) for _ in range(FRAMES_PER_WINDOW)])
            for _ in range(args.distinct_windows)
        ]
        reps = 300
        t = time.perf_counter()
        half = len(distinct) // 2
        for k in range(reps):
            window_similarity(distinct[k % half], distinct[half + k % half])
        print(f"window_similarity, one call per pair, no shared frames: {rate(reps, time.perf_counter() - t)}")

        t = time.perf_counter()
        for k in range(20):
            similarity_one_to_many(distinct[k % half], distinct[half : half + 50])
        dt = (time.perf_counter() - t) / 20
        print(f"one query vs 50 candidates, no shared frames: {dt * 1e3:.2f} ms ({rate(50, dt)})")

        m = args.distinct_windows
        t = time.perf_counter()
        pairwise_similarity(distinct)
        dt = time.perf_counter() - t
        print(f"all pairs among {m} windows sharing no frames: {dt:.2f} s ({rate(m * (m - 1) // 2, dt)})")

        mw = args.matrix_windows
        pool = [fake_signature(rng, sigs[0]) for _ in range(mw + FRAMES_PER_WINDOW - 1)]
        sliding = [window_signature(pool[i : i + FRAMES_PER_WINDOW]) for i in range(mw)]
        t = time.perf_counter()
        mat = pairwise_similarity(sliding)
        dt = time.perf_counter() - t
        print(
            f"all-pairs matrix of {mw} sliding windows ({len(pool)} frames, as cut from an archive): "
            f"{dt:.2f} s ({rate(mw * (mw - 1) // 2, dt)})"
        )
        t = time.perf_counter()
        for k in range(20):
            similarity_one_to_many(sliding[(k * 7) % mw], sliding[mw // 2 : mw // 2 + 50])
        dt = (time.perf_counter() - t) / 20
        print(f"one query vs 50 overlapping candidates (fresh call each time): {dt * 1e3:.2f} ms ({rate(50, dt)})")
        check = [(3, 700), (10, 11), (999 % mw, 0)]
        for i, j in check:
            assert abs(mat[i, j] - window_similarity(sliding[i], sliding[j])) < 1e-12
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
