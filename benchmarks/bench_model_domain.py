"""Which model set fits which imagery: each autoencoder's typical (median) per-pixel error, by data set.

    python benchmarks/bench_model_domain.py \
        --model-dir onnx_models --calibration procedural \
        --model-dir onnx_models/autoencoder-v2 --calibration var/tex-train3 \
        --archive var/tex-heldout [--write]

For each model set: the largest typical error over its own normal calibration frames (``procedural``: the
simulated validation frames the shipped default was calibrated on; an archive: its every-5th-day calibration
split, as ``satwatch train autoencoder --archive`` cuts it), then, on each data set (the procedural held-out
period with its events, each ``--archive`` with its labels, the study's 25 real COMS frames), the typical error
as a multiple of that maximum for normal and for event frames, the frames the detector would take for imagery
the model does not fit (``DOMAIN_FACTOR``), and the weather alerts with and without that check. ``--write``
stores the maximum in each card (``scoring.domain_error_max``), which is how the shipped cards got theirs.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np

from satwatch.services.models.anomaly import AUTOENCODER_CARD, DOMAIN_FACTOR, AnomalyScorer, typical_error
from satwatch.services.training.data import FrameSet, load_archive
from satwatch.services.training.pipeline import autoencoder_frames, autoencoder_test_frames, split_archive

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "study" / "raw_images"


def typical_errors(scorer: AnomalyScorer, fs: FrameSet, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's typical error and anomaly score."""
    out, scores = [], []
    error = scorer.card.scoring.error_output if scorer.card.scoring else "error"
    for s in range(0, len(fs), batch):
        frames = [fs.frame(i) for i in range(s, min(len(fs), s + batch))]
        maps = scorer._run(np.stack([f.data for f in frames]), [f.time for f in frames], [error])[0]
        out.append(typical_error(maps))
        scores += [r.score for r in scorer.score_batch(frames)]
    return np.concatenate(out), np.array(scores)


def calibration_frames(source: str, cache: Path) -> FrameSet:
    if source == "procedural":
        return autoencoder_frames(None, cache)[1]
    return split_archive(load_archive(source, progress=False), Path(source).name).valid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", action="append", required=True, help="a folder holding autoencoder.onnx + card")
    ap.add_argument("--calibration", action="append", required=True, help="per --model-dir: 'procedural' or an archive")
    ap.add_argument("--archive", action="append", default=[], help="a labelled archive to report on")
    ap.add_argument("--cache", default="var/cache/training", help="simulated frames are cached here")
    ap.add_argument("--write", action="store_true", help="store each maximum in its card")
    args = ap.parse_args()
    if len(args.calibration) != len(args.model_dir):
        ap.error("give one --calibration per --model-dir")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sets: dict[str, FrameSet] = {"procedural held-out (events)": autoencoder_test_frames(cache)[0]}
    for a in args.archive:
        sets[f"{Path(a).name} (events)"] = load_archive(a, progress=False)
    sets["study's real COMS frames"] = load_archive(REAL, progress=False)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; DOMAIN_FACTOR {DOMAIN_FACTOR}")
    print(
        "| model set | data | frames | typical / calibration max: normal min - max | events max | out of domain "
        "| weather alerts without / with the check |"
    )
    print("|---|---|---|---|---|---|---|")
    for model_dir, source in zip(args.model_dir, args.calibration, strict=True):
        scorer = AnomalyScorer.load(model_dir, threads=2)
        cal, _ = typical_errors(scorer, calibration_frames(source, cache))
        top = float(cal.max())
        name = f"{scorer.card.version} ({model_dir})"
        print(f"| {name} | calibration: {source} | {len(cal)} | {cal.min() / top:.2f} - 1.00 | | 0 | |")
        for label, fs in sets.items():
            typ, score = typical_errors(scorer, fs)
            ratio, event = typ / top, ~fs.normal()
            out = ratio > DOMAIN_FACTOR
            alerts = score > scorer.threshold
            ev = f"{ratio[event].max():.2f}" if event.any() else "-"
            norm = f"{ratio[~event].min():.2f} - {ratio[~event].max():.2f}" if (~event).any() else "-"
            print(
                f"| {name} | {label} | {len(fs)} | {norm} | {ev} | {int(out.sum())} | "
                f"{int(alerts.sum())} / {int((alerts & ~out).sum())} |"
            )
        if args.write:
            path = Path(model_dir) / AUTOENCODER_CARD
            card = json.loads(path.read_text())
            card["scoring"]["domain_error_max"] = top
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
                tmp.write(json.dumps(card, indent=2) + "\n")
            Path(tmp.name).replace(path)
            print(f"wrote domain_error_max {top:.4f} into {path}")


if __name__ == "__main__":
    main()
