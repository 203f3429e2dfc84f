"""Autoencoder model sets side by side on held-out texture-scene streams and on the study's real COMS frames.

Run:  python benchmarks/bench_anomaly_v2.py [--model-dir onnx_models --model-dir onnx_models/autoencoder-v2]
                                            [--archive var/tex-heldout --archive var/tex-train] [--real DIR]

Each ``--archive`` is a labelled stream the models were not trained or calibrated on (``satwatch simulate
--scene texture --seed S --out DIR`` writes one with its labels.json). For every model: ROC AUC per event
kind and overall, events detected, false alerts per normal day (the stream's unlabelled frames) at the
threshold training wrote, and on the 25 real frames (normal weather) how many alert and where their scores
sit against the threshold; then the per-frame cost of each model, measured side by side in one run (frames
scored in batches of 16, as the detector's replay does). The autoencoder's score only: the detector's
deterministic data-quality checks are reported by ``satwatch evaluate`` (the detector's decision).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from satwatch.services.models.anomaly import AnomalyScorer
from satwatch.services.training.data import FrameSet, frames_per_day, load_archive
from satwatch.services.training.evaluation import anomaly_metrics
from satwatch.services.training.report import score_results

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "study" / "raw_images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, action="append", help="model folders (default: shipped, v2)")
    ap.add_argument("--archive", type=Path, action="append", help="held-out labelled streams")
    ap.add_argument("--real", type=Path, default=REAL, help="real normal frames (default: the study's 25)")
    args = ap.parse_args()
    models = args.model_dir or [HERE.parent / "onnx_models", HERE.parent / "onnx_models" / "autoencoder-v2"]
    archives = args.archive or [Path("var/tex-heldout")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")
    scorers = {str(m): AnomalyScorer.load(m) for m in models}
    for name, sc in scorers.items():
        print(f"{name}: {sc.card.name} v{sc.card.version}, threshold {sc.threshold:.4g}")

    for root in archives:
        fs = load_archive(root, progress=False)
        per_day = frames_per_day(fs.times)
        print(f"\n== {root.name}: {len(fs.times)} frames, {sum(bool(x) for x in fs.labels)} labelled event frames ==")
        rows = []
        for name, sc in scorers.items():
            s = np.array([r.score for r in score_results(sc, fs, 16, False)])
            m = anomaly_metrics(s, fs.labels, None, sc.threshold, per_day)
            rows.append((name, m))
        kinds = [k for k in rows[0][1]["per_kind"]]
        print("| model | " + " | ".join(kinds) + " | all | events detected | false alerts / normal day |")
        print("|---" * (len(kinds) + 4) + "|")
        for name, m in rows:
            per = " | ".join(f"{m['per_kind'][k]['roc_auc']:.3f}" for k in kinds)
            print(
                f"| {name} | {per} | **{m['roc_auc']:.3f}** | {m['events_detected']}/{m['events']} | "
                f"{m['false_alerts_per_day']:.2f} ({m['normal_days']:.1f} d) |"
            )

    if args.real.is_dir():
        fs = load_archive(args.real, progress=False)
        print(f"\n== real frames: {len(fs.times)} ({fs.times[0]:%Y-%m-%d %H:%M} to {fs.times[-1]:%H:%M} UTC) ==")
        for name, sc in scorers.items():
            s = np.array([r.score for r in score_results(sc, fs, 16, False)])
            print(
                f"{name}: {int((s > sc.threshold).sum())} of {len(s)} alert; score min / median / max "
                f"{s.min():.3g} / {np.median(s):.3g} / {s.max():.3g} against threshold {sc.threshold:.3g}"
            )

    fs = load_archive(archives[0], progress=False)
    n = min(160, len(fs.times))
    frames = FrameSet(fs.satellite, fs.times[:n], fs.data[:n], fs.labels[:n])
    print("\n== per-frame cost, side by side (batches of 16, one thread each, 3 rounds, median) ==")
    costs: dict[str, list[float]] = {name: [] for name in scorers}
    for _ in range(3):
        for name, sc in scorers.items():
            t = time.perf_counter()
            score_results(sc, frames, 16, False)
            costs[name].append((time.perf_counter() - t) / len(frames.times))
    base = float(np.median(next(iter(costs.values()))))
    for name, c in costs.items():
        med = float(np.median(c))
        print(f"{name}: {med * 1e3:.2f} ms/frame ({med / base:.2f}x the first)")


if __name__ == "__main__":
    main()
