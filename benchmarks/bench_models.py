"""The autoencoder alone: onnxruntime time per model call, for one or more model folders side by side.

    python benchmarks/bench_models.py [--model-dir DIR ...] [--batch 4] [--calls 40] [--rounds 3]

Each folder's autoencoder runs on the same random batch (the shape its card declares, time features of
now) in the detector's own session settings (two threads, no spinning). Folders take turns, round after
round, so a machine that speeds up or slows down mid-run affects them alike; the table gives each
folder's median over all its calls. Default: the shipped models.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from time import perf_counter

import numpy as np

from satwatch.services.models.anomaly import AUTOENCODER_CARD, time_features
from satwatch.services.models.modelcard import load_card, open_session, packaged_model_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, action="append", help="folder with autoencoder.onnx + card (repeat)")
    ap.add_argument("--batch", type=int, default=4, help="frames per call (the detector scores chunks of 4)")
    ap.add_argument("--calls", type=int, default=40, help="timed calls per folder and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    folders = args.model_dir or [packaged_model_dir()]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rng = np.random.default_rng(0)
    runs = []
    for folder in folders:
        card = load_card(folder / AUTOENCODER_CARD)
        assert card.conditioning is not None
        shape = [args.batch if isinstance(d, str) else d for d in card.input.shape]
        feeds = {
            card.input.name: rng.random(shape, dtype=np.float32),
            card.conditioning.input.name: time_features([datetime.now(UTC)] * args.batch),
        }
        session = open_session(folder / card.file, args.threads)
        call = partial(session.run, [o.name for o in session.get_outputs()], feeds)
        for _ in range(3):  # warm-up: first calls allocate
            call()
        runs.append((f"| {folder} | {card.version} |", call, []))
    for _ in range(args.rounds):
        for _label, call, times in runs:
            for _ in range(args.calls):
                t0 = perf_counter()
                call()
                times.append(perf_counter() - t0)
    print(f"| model folder | version | median ms per call of {args.batch} frames | p90 ms |")
    print("|---|---|---|---|")
    for label, _call, times in runs:
        ms = 1000 * np.array(times)
        print(f"{label} {np.median(ms):.2f} | {np.percentile(ms, 90):.2f} |")


if __name__ == "__main__":
    main()
