"""A researcher's own archive, end to end with the documented commands: train, calibrate, evaluate held out.

1. ``satwatch simulate`` writes the researcher's archive (``--days`` days, events on, labels.json) and a
   later held-out period of the same source (same coastline, another seed): once with events (labelled),
   once the same seed with events off (its normal twin: the same weather).
2. ``satwatch train autoencoder --archive A --labels A/labels.json`` trains on the archive's normal frames
   and calibrates the threshold on every 5th day (every hour of the day).
3. ``satwatch evaluate --archive H --labels ... --model-dir OUT --skip-encoder --scores-out`` scores the
   held-out period (ROC AUC per kind, delay) and its normal twin (false alerts per normal day at the
   threshold training wrote), and the training archive itself (for the calibration frames' scores).
4. The calibration that training used before (one contiguous stretch: the last 20% by time, a half-day on
   a 2.5-day archive) is emulated on the same model: thresholds from each contiguous 12-hour block of the
   calibration days, each counted on the held-out normal twin. Same model, only the calibration differs.

    python benchmarks/bench_archive_calibration.py [--days 10] [--epochs 6] [--work var/bench-archive]

Steps already done (an archive, the trained model) are reused; delete ``--work`` to start afresh.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from satwatch.services.detection.scores import read_scores
from satwatch.services.training.autoencoder import calibrate_threshold
from satwatch.services.training.data import calibration_split

SATWATCH = [sys.executable, "-m", "satwatch"]


def sh(*args: str) -> None:
    print("$ satwatch " + " ".join(args), flush=True)
    subprocess.run([*SATWATCH, *args], check=True)


def simulate(out: Path, days: float, seed: int, start: str, events: bool) -> Path:
    if not (out / "simulation.json").is_file():
        extra = [] if events else ["--no-events"]
        sh("simulate", "--out", str(out), "--days", f"{days:g}", "--seed", str(seed), "--geography", "7",
           "--start", start, "--quiet", *extra)  # fmt: skip
    return out


def evaluate(archive: Path, labels: Path, model: Path, out: Path) -> tuple[dict, list[dict[str, str]]]:
    scores = out / "scores.tsv"
    if scores.exists():
        scores.unlink()
    sh("evaluate", "--archive", str(archive), "--labels", str(labels), "--model-dir", str(model), "--skip-encoder",
       "--out", str(out), "--scores-out", str(scores), "--no-progress")  # fmt: skip
    return json.loads((out / "metrics.json").read_text())["autoencoder"], read_scores(scores)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=float, default=10.0, help="length of the researcher's archive")
    ap.add_argument("--held-out-days", type=float, default=4.0)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--work", type=Path, default=Path("var/bench-archive"))
    args = ap.parse_args()
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    start = datetime(2024, 7, 1, tzinfo=UTC)
    later = start + timedelta(days=args.days + 4)
    archive = simulate(w / "archive", args.days, 4101, f"{start:%Y-%m-%dT%H:%MZ}", True)
    held = simulate(w / "held-out", args.held_out_days, 4202, f"{later:%Y-%m-%dT%H:%MZ}", True)
    twin = simulate(w / "held-out-normal", args.held_out_days, 4202, f"{later:%Y-%m-%dT%H:%MZ}", False)
    (w / "none.tsv").write_text("kind\tstart\tend\n")  # the twin has no event
    model = w / "ae"
    if not (model / "autoencoder.card.json").is_file():
        sh("train", "autoencoder", "--archive", str(archive), "--labels", str(archive / "labels.json"),
           "--out", str(model), "--epochs", str(args.epochs), "--no-baseline", "--no-progress")  # fmt: skip
    card = json.loads((model / "autoencoder.card.json").read_text())
    threshold = float(card["thresholds"]["anomaly"])

    ev, _ = evaluate(held, held / "labels.json", model, w / "eval-held-out")
    tw, twin_rows = evaluate(twin, w / "none.tsv", model, w / "eval-normal")
    _, own_rows = evaluate(archive, archive / "labels.json", model, w / "eval-archive")

    normal = np.array([float(r["score"]) for r in twin_rows])
    days = len(normal) / 96.0
    print("\n## held-out period (events), at the threshold training wrote")
    print(f"archive {args.days:g} d (seed 4101), held-out {args.held_out_days:g} d (seed 4202)")
    print(f"threshold training wrote: {threshold:.4g}")
    print(f"calibration: {card['metrics']['calibration']}")
    print("| kind | events detected | mean delay (frames) | ROC AUC | AP |")
    print("|---|---|---|---|---|")
    for kind, v in ev["per_kind"].items():
        print(
            f"| {kind} | {v['detected']}/{v['events']} | {v['mean_delay_frames']:.1f} | {v['roc_auc']:.3f} | "
            f"{v['average_precision']:.3f} |"
        )
    print(f"| all | {ev['events_detected']}/{ev['events']} | {ev['mean_delay_frames']:.1f} | {ev['roc_auc']:.3f} | "
          f"{ev['average_precision']:.3f} |")  # fmt: skip
    print(f"false alerts per normal day on the held-out normal twin ({days:.1f} d): {tw['false_alerts_per_day']:.2f}")
    print(f"  (and on the held-out period's own unlabelled frames: {ev['false_alerts_per_day']:.2f})")

    # The same model calibrated the old way: on one contiguous 12-hour stretch of the calibration days.
    times = [datetime.fromisoformat(r["time"].replace("Z", "+00:00")) for r in own_rows]
    held_mask, _ = calibration_split(times)
    cal = [(t, float(r["score"])) for t, r, m in zip(times, own_rows, held_mask, strict=True) if m and not r["labels"]]
    print("\n## the same model, threshold from one contiguous 12 h block of the calibration days")
    print("| calibration block | frames | threshold | false alerts per normal day (held-out twin) |")
    print("|---|---|---|---|")
    all_scores = np.array([s for _, s in cal])
    again = calibrate_threshold(all_scores, float(card["thresholds"]["false_alert_rate"]))
    fa = (normal > again).sum() / days
    print(f"| all calibration days (what training wrote) | {len(cal)} | {again:.4g} | {fa:.2f} |")
    for day in sorted({t.date() for t, _ in cal}):
        for h0 in (0, 12):
            block = np.array([s for t, s in cal if t.date() == day and h0 <= t.hour < h0 + 12])
            if len(block) < 24:
                continue
            th = calibrate_threshold(block, float(card["thresholds"]["false_alert_rate"]))
            print(f"| {day} {h0:02d}-{h0 + 12:02d} UTC | {len(block)} | {th:.4g} | {(normal > th).sum() / days:.2f} |")
    # How much normal scores swing with the hour (held-out normal twin).
    hours = np.array([datetime.fromisoformat(r["time"].replace("Z", "+00:00")).hour for r in twin_rows])
    band = [float(np.mean(normal[(hours >= h) & (hours < h + 3)])) for h in range(0, 24, 3)]
    print("\nmean normal score by 3-hour band (UTC 00, 03, ... 21): " + ", ".join(f"{b:.2f}" for b in band))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
