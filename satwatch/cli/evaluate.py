"""``satwatch evaluate``: recompute the models' figures and write the Markdown report with its plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from satwatch.cli import add_config_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate the ONNX encoder and anomaly autoencoder and write a Markdown report",
        description=(
            "Evaluate the frame encoder and the anomaly autoencoder with ONNX Runtime (no PyTorch needed) "
            "and write OUT/README.md with plots: ground-truth similarity vs embedding distance (Pearson, "
            "Spearman, top-10 similarity, recall@10 on the held-out test block), example retrievals, "
            "training curves from the model cards, ROC AUC / average precision / detection delay per event "
            "kind and false alerts per normal day on a held-out simulated period, and anomaly maps."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("docs/report"), help="report folder (default: %(default)s)")
    p.add_argument(
        "--model-dir",
        type=Path,
        help="folder with encoder.onnx/autoencoder.onnx and their cards (default: the packaged models)",
    )
    p.add_argument(
        "--archive",
        type=Path,
        help="archive for the encoder evaluation (its last 60%% is the test block); default: the simulated "
        "archive the encoder was trained on (as its card records)",
    )
    p.add_argument(
        "--days",
        type=float,
        help="length of the simulated encoder archive (default: the one the encoder was trained on); a longer "
        "one moves the test block (its last 60%%) further from the training data",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=Path("var/cache/training"),
        help="where simulated evaluation data is cached (default: %(default)s)",
    )
    p.add_argument("--skip-encoder", action="store_true", help="leave out the encoder evaluation")
    p.add_argument("--skip-anomaly", action="store_true", help="leave out the autoencoder evaluation")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_config_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from satwatch.services.training.pipeline import autoencoder_test_frames, encoder_frames
    from satwatch.services.training.report import write_report

    if args.archive is not None and not args.archive.is_dir():
        raise FileNotFoundError(f"archive directory {args.archive} does not exist")
    enc = None
    if not args.skip_encoder:
        from satwatch.services.models.embedding import FrameEncoder

        # Without --archive, rebuild the simulated archive the encoder was trained on, so that its test
        # block is the one held out in training.
        sim = FrameEncoder.load(args.model_dir).card.metrics.get("simulation", {})
        enc = encoder_frames(args.archive, args.cache, days=args.days or sim.get("days"))[0]
    events = twin = None
    if not args.skip_anomaly:
        events, twin = autoencoder_test_frames(args.cache)
    path = write_report(args.out, args.model_dir, enc, events, twin, progress=not args.no_progress)
    print(f"report written to {path}")
    return 0
