"""Score an autoencoder on several unseen simulated weeks: how much its ROC AUC moves from week to week.

Run: python benchmarks/bench_anomaly_weeks.py [--model-dir onnx_models] [--seeds 1303 2303 3303 4303 5303 6303]

Each week is one simulator seed (7 days, events on) on the autoencoder's coastline, plus the same seed with
events off for false alerts per normal day, scored through ONNX Runtime exactly as `satwatch evaluate` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from satwatch.services.models.anomaly import AnomalyScorer
from satwatch.services.training.data import simulate_frames
from satwatch.services.training.evaluation import anomaly_metrics
from satwatch.services.training.pipeline import AE_GEOGRAPHY
from satwatch.services.training.report import score_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, help="folder with autoencoder.onnx + card (default: shipped)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1303, 2303, 3303, 4303, 5303, 6303])
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--cache", type=Path, default=Path("var/cache/training"), help="simulated frames cache")
    args = ap.parse_args()
    scorer = AnomalyScorer.load(args.model_dir, threads=2)
    print(f"autoencoder v{scorer.card.version}, threshold {scorer.threshold:.4g}")
    print("| seed | ROC AUC | events alerted | storms alerted | convection AUC | false alerts/day |")
    print("|---|---|---|---|---|---|")
    aucs = []
    per_kind: dict[str, dict[str, list[float]]] = {}
    for seed in tqdm(args.seeds, desc="weeks", leave=False):
        events = simulate_frames(seed, args.days, True, cache_dir=args.cache, geography=AE_GEOGRAPHY)
        normal = simulate_frames(seed, args.days, False, cache_dir=args.cache, geography=AE_GEOGRAPHY)
        m = anomaly_metrics(
            score_all(scorer, events, progress=False)[0],
            events.labels,
            score_all(scorer, normal, progress=False)[0],
            scorer.threshold,
        )
        kinds = m["per_kind"]
        for kind, km in kinds.items():
            row = per_kind.setdefault(kind, {"auc": [], "detected": [], "events": []})
            for key, value in (("auc", km["roc_auc"]), ("detected", km["detected"]), ("events", km["events"])):
                row[key].append(float(value))
        vortex, conv = kinds.get("vortex", {}), kinds.get("convection", {})
        aucs.append(m["roc_auc"])
        tqdm.write(
            f"| {seed} | {m['roc_auc']:.3f} | {m['events_detected']} of {m['events']} | "
            f"{vortex.get('detected', 0)} of {vortex.get('events', 0)} | {conv.get('roc_auc', float('nan')):.3f} | "
            f"{m['false_alerts_per_day']:.2f} |"
        )
    print(f"mean ROC AUC {np.mean(aucs):.3f} (min {np.min(aucs):.3f}, max {np.max(aucs):.3f})")
    print()
    print("| event kind | ROC AUC, lowest to highest week | events alerted |")
    print("|---|---|---|")
    for kind, row in per_kind.items():
        auc = np.array(row["auc"])
        print(
            f"| {kind} | {np.nanmin(auc):.3f} - {np.nanmax(auc):.3f} | "
            f"{int(sum(row['detected']))} of {int(sum(row['events']))} |"
        )


if __name__ == "__main__":
    main()
