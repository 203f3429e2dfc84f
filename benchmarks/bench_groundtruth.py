"""Benchmark of the ground-truth metric at the real geometry, against the study's own program.

Run:  python benchmarks/bench_groundtruth.py [--study DIR] [--matrix-windows 1000] [--exact-only | --cold-only]

1. Cuts the six full windows (20 frames within 6 hours, ending 12:00 .. 13:15) from the study's 25 real
   COMS-1 frames (``../shared/data/study/raw_images``: 1500 wide x 1300 high, 4 channels, 08:30 and 11:30
   missing) by the one window rule, laid out as study-layout folders of symlinks (image_1..image_20/{ch}.png).
2. Compiles the study's program from ``../shared/data/study/reference`` with g++ -O2, unchanged (``main.cpp``),
   and ``benchmarks/reference/study_driver.cpp`` (the same code, printing 17 significant digits).
3. Exactness: seed mode against the driver on several window pairs and (N, B); max |difference| (bar 1e-9).
4. Cold pair (160 full-size PNGs, decode included): the study's program ``run A B 24 20`` timed before and after
   what a user runs, ``satwatch similarity A B`` in a fresh process with no signature cache (2 workers, the
   default on 2 cores, and --workers 1), on the windows ending 12:00 and 13:15 (they share 15 frames, which
   satwatch reads once) and on copies of them sharing no file; speed ratio program / satwatch (bar 3x).
5. Warm figures from cached signatures on one core (bar 10,000 pairs/s among windows sharing no frames), and
   signature sizes.
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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.profiles import get_profile
from satwatch.services.frames.windows import windows_over
from satwatch.services.metric.groundtruth import (
    FrameSignature,
    GridSpec,
    SignatureCache,
    _max_diff_sum,
    frame_signature,
    frame_signatures_from_paths,
    pairwise_similarity,
    similarity_from_paths,
    similarity_one_to_many,
    window_files,
    window_signature,
    window_similarity,
)

HERE = Path(__file__).resolve().parent
STUDY = HERE.parent.parent / "shared" / "data" / "study"
FRAMES_PER_WINDOW = 20
YEAR_FRAMES = 365 * 24 * 4
#: (window i, window j, N, B) compared with the study's program: every channel, several grids and bin counts.
EXACT_CASES = [(0, 5, 24, 20), (1, 3, 24, 20), (2, 4, 24, 20), (0, 2, 10, 8), (2, 5, 7, 33), (4, 1, 1, 255)]


def real_windows(study: Path, out: Path) -> tuple[list[Path], list[list[datetime]]]:
    """Study-layout folders (symlinks) of every full COMS-1 window over the study's real frames."""
    archive = Archive(study / "raw_images", "COMS-1")
    coms = get_profile("COMS-1")
    wins = windows_over(archive.times, coms.window_frames, coms.window_span)
    folders = []
    for k, times in enumerate(wins):
        for i, t in enumerate(times, start=1):
            d = out / f"w{k}" / f"image_{i}"
            d.mkdir(parents=True, exist_ok=True)
            for c in archive.channels:
                (d / f"{c}.png").symlink_to(archive.files(t).paths[c].resolve())
        folders.append(out / f"w{k}")
    return folders, wins


def compile_study_program(study: Path, build: Path) -> tuple[Path, Path] | None:
    """(run, driver): the study's main.cpp as published and the full-precision driver, both g++ -O2."""
    if shutil.which("g++") is None:
        print("g++ not found: skipping the study's program", file=sys.stderr)
        return None
    ref = study / "reference"
    run, driver = build / "run", build / "driver"
    for cmd in (
        ["g++", "-O2", "-o", str(run), str(ref / "main.cpp")],
        ["g++", "-O2", "-I", str(ref), "-o", str(driver), str(HERE / "reference" / "study_driver.cpp")],
    ):
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"could not compile the study's program:\n{res.stderr}", file=sys.stderr)
            return None
    return run, driver


def fake_signature(rng: np.random.Generator, like: FrameSignature) -> FrameSignature:
    """A signature with the real one's geometry and random monotone cumulative counts (timing only)."""
    bins, slots = like.cum.shape
    n = int(like.cell_pixels[0])
    cum = np.sort(rng.integers(0, n + 1, (bins, slots), dtype=np.int16), axis=0)
    cum[:, like.size :] = 0
    return FrameSignature(like.spec, like.shape, like.channels, cum, like.cell_pixels)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def exactness(driver: Path, folders: list[Path], cases: list[tuple[int, int, int, int]]) -> float:
    """Max |satwatch seed mode - study program| over ``cases``; two program runs at a time."""

    def program(case: tuple[int, int, int, int]) -> float:
        i, j, n, b = case
        out = subprocess.run(
            [str(driver), "window", str(folders[i]), str(folders[j]), str(n), str(b)],
            check=True,
            capture_output=True,
            text=True,
        )
        return float(out.stdout.split()[-1])

    with ThreadPoolExecutor(max_workers=2) as pool:
        theirs = list(pool.map(program, cases))
    worst = 0.0
    print("\n== exactness: seed mode vs the study's program (17 digits), real windows ==")
    for (i, j, n, b), t in zip(cases, theirs, strict=True):
        ours = similarity_from_paths(
            window_files(folders[i]), window_files(folders[j]), GridSpec(n, b, "seed"), workers=2
        )
        worst = max(worst, abs(ours - t))
        print(
            f"windows {i} vs {j}, N={n:2d} B={b:3d}: satwatch {ours:.17f}  program {t:.17f}  |diff| {abs(ours - t):.1e}"
        )
    print(f"max |difference| over {len(cases)} pairs: {worst:.2e} (bar 1e-9)")
    return worst


def cpu_children() -> float:
    t = os.times()
    return t.children_user + t.children_system


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", type=Path, default=STUDY, help="the study's data folder (default ../shared/data/study)")
    ap.add_argument("--matrix-windows", type=int, default=1000, help="sliding windows in the all-pairs matrix")
    ap.add_argument("--distinct-windows", type=int, default=200, help="windows sharing no frames, all pairs")
    ap.add_argument("--exact-only", action="store_true", help="stop after the exactness check")
    ap.add_argument("--no-exact", action="store_true", help="skip the exactness check (about 2 minutes)")
    ap.add_argument("--cold-only", action="store_true", help="stop after the cold pair and the signature sizes")
    args = ap.parse_args()

    if not (args.study / "raw_images").is_dir():
        print(f"the study's real frames are not in {args.study / 'raw_images'}", file=sys.stderr)
        return 2
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_gt_"))
    try:
        folders, wins = real_windows(args.study, tmp / "windows")
        print(f"{len(wins)} full windows over the real frames, ending {', '.join(f'{w[-1]:%H:%M}' for w in wins)}")
        built = compile_study_program(args.study, tmp)
        spec = GridSpec(24, 20, "seed")
        # Compile the pair kernel once (numba caches it on disk) so timings are of the work, not the JIT.
        small = [frame_signature(np.zeros((1, 48, 48), np.uint8), spec, check_size=False)]
        window_similarity(window_signature(small), window_signature(small))

        worst = None
        if built is not None and not args.no_exact:
            worst = exactness(built[1], folders, EXACT_CASES)
            if worst > 1e-9:
                print("MISMATCH against the study's program", file=sys.stderr)
                return 1
        if args.exact_only:
            return 0

        # --- cold: the study's program vs satwatch, same 160 files -------------------------------------
        # The rule's windows ending 12:00 and 13:15 share 15 of their 20 frames: satwatch reads each shared
        # frame once (100 PNGs), the program decodes all 160. The same windows with every file copied to a path
        # of its own make a pair that shares nothing (160 PNGs for both).
        wa, wb = window_files(folders[0]), window_files(folders[5])
        apart = [tmp / "apart" / "a", tmp / "apart" / "b"]
        for src, dst in zip((folders[0], folders[5]), apart, strict=True):
            shutil.copytree(src, dst, copy_function=shutil.copyfile)
        prog_cmd = [str(built[0]), str(folders[0]), str(folders[5]), "24", "20"] if built else None
        clis = {
            "shared": [sys.executable, "-m", "satwatch", "similarity", str(folders[0]), str(folders[5])],
            "apart": [sys.executable, "-m", "satwatch", "similarity", str(apart[0]), str(apart[1])],
        }
        # Untimed first run: numba's on-disk cache of compiled kernels is filled once after an install or an
        # edit; what is timed below is the user's every-day run (kernels loaded from that cache).
        subprocess.run([*clis["shared"], "--workers", "1"], check=True, capture_output=True)
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        timings: dict[str, float] = {}
        cpu: dict[str, float] = {}
        prog_out = ""
        if prog_cmd:
            c0, t = cpu_children(), time.perf_counter()
            prog_out = subprocess.run(prog_cmd, check=True, capture_output=True, text=True).stdout
            timings["prog1"], cpu["prog1"] = time.perf_counter() - t, cpu_children() - c0
        sims = []
        for name, cli in clis.items():
            for workers in (2, 1):
                c0, t = cpu_children(), time.perf_counter()
                out = subprocess.run([*cli, "--workers", str(workers)], check=True, capture_output=True, text=True)
                timings[f"{name}{workers}"] = time.perf_counter() - t
                cpu[f"{name}{workers}"] = cpu_children() - c0
                sims.append(float(out.stdout.split()[0]))
        if prog_cmd:
            c0, t = cpu_children(), time.perf_counter()
            subprocess.run(prog_cmd, check=True, capture_output=True)
            timings["prog2"], cpu["prog2"] = time.perf_counter() - t, cpu_children() - c0
        sim = similarity_from_paths(wa, wb, spec, None, workers=2)
        assert all(abs(x - sim) < 1e-9 for x in sims)  # the CLI prints 9 decimals
        print("\n== cold pair: 2 windows x 20 frames x 4 channels = 160 real PNGs (1500 wide x 1300 high) ==")
        print(f"load average before/after: {load_before} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if prog_cmd:
            prog = (timings["prog1"] + timings["prog2"]) / 2
            prog_cpu = (cpu["prog1"] + cpu["prog2"]) / 2
            print(
                f"the study's program (g++ -O2, `run A B 24 20`): {timings['prog1']:.2f} s before, "
                f"{timings['prog2']:.2f} s after (CPU {cpu['prog1']:.2f} / {cpu['prog2']:.2f} s); it printed "
                f"{prog_out.strip()!r}"
            )
            assert f"{sim:.6g}" == prog_out.strip()
        for name, what in (("shared", "windows sharing 15 frames (100 PNGs read)"), ("apart", "no file shared")):
            for workers in (2, 1):
                key = f"{name}{workers}"
                line = (
                    f"`satwatch similarity A B --workers {workers}`, {what}: {timings[key]:.2f} s "
                    f"(CPU {cpu[key]:.2f} s)"
                )
                if prog_cmd:
                    line += (
                        f"; program / satwatch {timings['prog1'] / timings[key]:.1f}x / "
                        f"{timings['prog2'] / timings[key]:.1f}x (mean {prog / timings[key]:.1f}x), "
                        f"CPU {prog_cpu / cpu[key]:.1f}x"
                    )
                print(line)
        print("bar: satwatch at least 3x faster than the program (fresh process, decode included)")
        frames = [*wa, *wb]
        # --- signature sizes ---------------------------------------------------------------------------
        cache = SignatureCache(tmp / "cache")
        sigs = frame_signatures_from_paths(frames, spec, cache, workers=2)
        files = list((tmp / "cache").rglob("*.npz"))
        disk = float(np.mean([f.stat().st_size for f in files]))
        t = time.perf_counter()
        warm_sigs = frame_signatures_from_paths(frames, spec, cache, workers=1)
        load_s = (time.perf_counter() - t) / len(frames)
        assert cache.hits == len({tuple(os.path.realpath(p) for p in f) for f in frames})  # shared frames: once
        assert window_similarity(window_signature(warm_sigs[:20]), window_signature(warm_sigs[20:])) == sim
        print("\n== signatures ==")
        print(f"in memory per frame (4 channels, 24x24 cells, 20 cumulative bins, int16): {sigs[0].nbytes:,} B")
        print(f"on disk per frame (compressed npz): {disk:,.0f} B; load from cache {load_s * 1e3:.2f} ms")
        print(
            f"a year of 15-minute frames ({YEAR_FRAMES:,}): {YEAR_FRAMES * disk / 2**30:.2f} GiB on disk, "
            f"{YEAR_FRAMES * sigs[0].nbytes / 2**30:.2f} GiB in memory"
        )

        if args.cold_only:
            return 0

        # --- warm: from cached signatures, one core ----------------------------------------------------
        rng = np.random.default_rng(1)
        print("\n== warm: from cached signatures, one core (single-threaded kernel) ==")
        distinct = [
            window_signature([fake_signature(rng, sigs[0]) for _ in range(FRAMES_PER_WINDOW)])
            for _ in range(args.distinct_windows)
        ]
        # Load every kernel the figures below use (numba compiles on first use, or loads from its disk cache).
        similarity_one_to_many(distinct[0], distinct[1:3])
        pairwise_similarity(distinct[:3])
        a, b = distinct[0].frames[0].cum, distinct[1].frames[0].cum
        mx = np.zeros(a.shape[1], dtype=a.dtype)
        _max_diff_sum(a, b, 0, a.shape[1], mx)
        reps = 20000
        t = time.perf_counter()
        for _ in range(reps):
            _max_diff_sum(a, b, 0, a.shape[1], mx)
        dt = (time.perf_counter() - t) / reps
        print(
            f"kernel only, one frame pair hot in cache: {dt * 1e6:.2f} us = "
            f"{rate(1, dt * FRAMES_PER_WINDOW)} window pairs (20 frame pairs each)"
        )
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
        runs = []
        for _ in range(3):  # the machine is shared: three runs, each reported
            t = time.perf_counter()
            pairwise_similarity(distinct)
            runs.append(time.perf_counter() - t)
        pairs = m * (m - 1) // 2
        print(
            f"all pairs among {m} windows sharing no frames, 3 runs: "
            + ", ".join(f"{dt:.2f} s ({rate(pairs, dt)})" for dt in runs)
            + f"; median {rate(pairs, float(np.median(runs)))}"
        )

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
        print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
