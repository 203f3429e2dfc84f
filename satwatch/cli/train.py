"""``satwatch train encoder|autoencoder``: train a model on an archive (or the simulator) and export ONNX."""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Any

from satwatch.cli import add_config_argument

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train and export the frame encoder or the anomaly autoencoder (needs the 'train' extra: torch)",
        description=(
            "Train one of the detector's two models with PyTorch and export it to ONNX with its model card "
            "(sha256, normalisation, metrics, calibrated thresholds). The export is checked against PyTorch "
            "to 1e-4. 'encoder' maps a window's mean per-cell histograms to the vector the index holds, so that "
            "its distances track the ground-truth similarity: a learned map (log-ratio loss, 20:20:60 time "
            "split) or, with --map sketch, a count sketch (nothing learned; COMS-1's encoder v3). "
            "'autoencoder' learns to reconstruct normal weather conditioned on time of day and day of year, "
            "calibrates the alert threshold on normal validation frames and also trains an unconditioned "
            "baseline for comparison. Copy the files from --out into onnx_models/ (or point "
            "detector.model_dir at --out) to use them."
        ),
    )
    p.add_argument("model", choices=["encoder", "autoencoder"], help="which model to train")
    p.add_argument(
        "--archive",
        type=Path,
        action="append",
        metavar="DIR",
        help="KMA-named PNG archive to train on; default: simulate the standard training data into --cache. "
        "The autoencoder trains on its normal frames, holds out every 5th day (every hour of the day) to "
        "calibrate the threshold, and never trains on labelled event frames. Autoencoder: repeatable, several "
        "archives (streams of other seasons and weather) train as one and each holds out its own every 5th "
        "day, so the threshold is calibrated on every archive's weather; with --novelty give the same archives",
    )
    p.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="autoencoder: the archive's event labels, TSV or JSON (kind, start, end, optional region; format in "
        "docs/models.md), matched by time, so one file serves several --archive; default: each archive's "
        "labels.json or labels.tsv if it has one",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoints, the ONNX file and its card")
    p.add_argument(
        "--cache",
        type=Path,
        default=Path("var/cache/training"),
        help="where simulated training data is cached (default: %(default)s)",
    )
    p.add_argument("--epochs", type=int, help="training epochs (default: 10 encoder, 8 autoencoder)")
    p.add_argument("--batch-size", type=int, default=32, help="windows (encoder) or frames per batch")
    p.add_argument("--lr", type=float, help="AdamW learning rate (default: 1e-3 encoder, 2e-3 autoencoder)")
    p.add_argument("--seed", type=int, default=0, help="seed of weight initialisation and batch order")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="PyTorch device")
    p.add_argument(
        "--resume",
        type=Path,
        metavar="PATH",
        help="continue from a checkpoint written by an earlier run; autoencoder: or from an earlier --out "
        "folder, each run (candidates, baseline) from its own checkpoint there, runs without one from scratch",
    )
    p.add_argument(
        "--days",
        type=float,
        help="encoder: days to simulate when no --archive is given (default 42 for v2, 14 for v1)",
    )
    p.add_argument(
        "--arch",
        choices=["v2", "v1"],
        default="v2",
        help="encoder: v2 (default) maps the mean per-cell histograms of the window (or of its --parts "
        "consecutive parts) to --dim numbers; v1 embeds frames and averages them",
    )
    p.add_argument(
        "--parts",
        type=int,
        default=1,
        help="encoder v2: consecutive parts of the window whose mean histograms are each mapped alike (default 1: "
        "v2.0, the shipped map of the window mean; 2 with --dim 256 is v2.1, see BENCHMARKS.md)",
    )
    p.add_argument("--dim", type=int, default=128, help="encoder v2: embedding size (default 128)")
    p.add_argument(
        "--map",
        choices=["linear", "conv", "sketch"],
        default="linear",
        help="encoder v2: 'linear' (v2.0, v2.1: one linear map per part, log-ratio loss) or 'conv' (v2.2: plus a "
        "small convolutional map per part, in-batch Pearson loss, turned and mirrored grids; with --parts 1 the "
        "window mean is its one part; --lr stays the linear map's); 'sketch' (v3: nothing learned, a count sketch "
        "of the square roots into --dim signed sums, the seed chosen among --seed and the next 7 on the valid "
        "block and any --valid-archive; --parts 2 --dim 256 is the COMS-1 profile's encoder-v3)",
    )
    p.add_argument(
        "--part-filled",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="encoder v2: this share of training windows also joins part-filled (their latest 4-19 frames), as the "
        "detector sees a stream's first hours and gaps (v2.2: 0.3)",
    )
    p.add_argument(
        "--valid-archive",
        type=Path,
        action="append",
        metavar="DIR",
        help="encoder v2: an archive whose windows join model selection only, beside the valid block (repeatable)",
    )
    p.add_argument(
        "--extra-archive",
        type=Path,
        action="append",
        metavar="DIR",
        help="encoder v2: another archive whose windows join the training windows (repeatable), e.g. a "
        "texture-scene archive; without --archive they come on top of the three simulated weeks the default adds",
    )
    p.add_argument(
        "--alerts-per-day",
        type=float,
        default=0.5,
        help="autoencoder: false alerts per normal day allowed when calibrating the threshold (default 0.5)",
    )
    p.add_argument("--no-baseline", action="store_true", help="autoencoder: skip the unconditioned baseline")
    p.add_argument(
        "--candidates",
        type=int,
        default=1,
        metavar="N",
        help="autoencoder: train N runs (seeds --seed upwards) and keep the best ROC AUC on the labelled "
        "development periods: the simulator's, or with --archive the archive's own labelled events against its "
        "calibration days",
    )
    p.add_argument(
        "--novelty",
        type=Path,
        metavar="MODEL_DIR",
        help="autoencoder, no training: give the v2 model set in MODEL_DIR the temporal-novelty term (each patch "
        "against the same patch in the 3 previous frames), its spread and the threshold calibrated on the "
        "calibration days of --archive (the archive the set was trained on); the set goes to --out",
    )
    p.add_argument(
        "--calibration-archive",
        type=Path,
        action="append",
        metavar="DIR",
        help="autoencoder (repeatable): calibrate on whole normal streams the network never trains on: the "
        "scoring's centres, spreads and gates, the novelty term and the threshold come from every normal frame of "
        "these archives (together every hour of the day; each its own stream), not from held-out days of --archive, "
        "whose weather the network has in effect seen, so that threshold is too tight for new weather. Also with "
        "--novelty, which then recalibrates a trained set without scoring --archive",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_config_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        log.error("satwatch train needs PyTorch: pip install 'satwatch[train]'")
        return 2
    from satwatch.services.training.pipeline import (
        TrainOptions,
        run_autoencoder,
        run_encoder,
        run_encoder_sketch,
        run_encoder_v2,
    )

    archives: list[Path] = args.archive or []
    for folder in [*archives, *(args.calibration_archive or [])]:
        if not folder.is_dir():
            raise FileNotFoundError(f"archive directory {folder} does not exist")
    if args.calibration_archive and args.model != "autoencoder":
        log.error("--calibration-archive calibrates the autoencoder's threshold; the encoder has none")
        return 2
    if len(archives) > 1 and (args.model != "autoencoder"):
        log.error("several --archive train the autoencoder only; the encoder takes one (more: --extra-archive)")
        return 2
    # One archive stays a path, so a single-archive run is exactly what it was before --archive repeated.
    args.archive = archives[0] if len(archives) == 1 else (archives or None)
    if args.novelty is not None:
        return _novelty(args)
    if args.labels is not None and args.archive is None:
        raise ValueError("--labels describes an archive's events: give --archive DIR too")
    if args.labels is not None and not args.labels.is_file():
        raise FileNotFoundError(f"labels file {args.labels} does not exist")
    if args.resume is not None and not (
        args.resume.is_file() or (args.model == "autoencoder" and args.resume.is_dir())
    ):
        raise FileNotFoundError(
            f"checkpoint {args.resume} does not exist"
            + (" (the autoencoder also takes an earlier --out folder)" if args.model == "autoencoder" else "")
        )
    opts = TrainOptions(
        out=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
    )
    if args.model == "encoder":
        if args.arch == "v2" and args.map == "sketch":
            if args.extra_archive or args.part_filled:
                log.error(
                    "--map sketch learns nothing: --extra-archive and --part-filled have no use (--valid-archive does)"
                )
                return 2
            card = run_encoder_sketch(
                opts,
                args.archive,
                args.cache,
                days=args.days,
                parts=args.parts,
                dim=args.dim,
                valid_archives=args.valid_archive,
            )
        elif args.arch == "v2":
            card = run_encoder_v2(
                opts,
                args.archive,
                args.cache,
                days=args.days,
                extra_archives=args.extra_archive,
                parts=args.parts,
                dim=args.dim,
                conv=args.map == "conv",
                part_filled=args.part_filled,
                valid_archives=args.valid_archive,
            )
        else:
            card = run_encoder(opts, args.archive, args.cache, days=args.days)
        test = card.metrics.get("test", {})
        print(f"encoder written to {args.out}: test Pearson {test.get('pearson', float('nan')):.4f}")
    else:
        card = run_autoencoder(
            opts,
            args.archive,
            args.cache,
            alerts_per_day=args.alerts_per_day,
            baseline=not args.no_baseline,
            candidates=args.candidates,
            labels=args.labels,
            calibration_archive=args.calibration_archive,
        )
        print(autoencoder_summary(args.out, card.thresholds["anomaly"], card.metrics))
        if args.archive is not None:
            print(
                "score a held-out labelled period with: satwatch evaluate --archive DIR --labels FILE "
                f"--model-dir {args.out} --skip-encoder"
            )
    return 0


def autoencoder_summary(out: Path | str, threshold: float, metrics: dict[str, Any]) -> str:
    """The line a training run ends with: where the set went, its threshold and how it scored, and, where the
    period it was scored on held no labelled event (an archive of normal weather), that there was nothing to
    rank rather than a ROC AUC of nan."""
    m = metrics.get("conditioned", {})
    cal = metrics.get("calibration", {})
    where = "held-out" if "test_data" in metrics else "development (not held out)"
    head = (
        f"autoencoder written to {out}: threshold {threshold:.5g} (calibrated on {cal.get('frames', 0)} normal "
        f"frames, {cal.get('hours_covered', 0)} of 24 hours)"
    )
    auc, fa = float(m.get("roc_auc", math.nan)), float(m.get("false_alerts_per_day", math.nan))
    false_alerts = f", false alerts/day {fa:.2f}" if math.isfinite(fa) else ""
    if not math.isfinite(auc):
        return (
            f"{head}; the {where} period holds no labelled event, so no ROC AUC{false_alerts} (score a labelled "
            "period with satwatch evaluate --archive DIR --labels FILE)"
        )
    return f"{head}, {where} ROC AUC {auc:.4f}{false_alerts}"


def _novelty(args: argparse.Namespace) -> int:
    from satwatch.services.training.pipeline import calibrate_novelty

    if args.model != "autoencoder" or args.archive is None:
        log.error("--novelty recalibrates an autoencoder set on its training archive: give autoencoder and --archive")
        return 2
    card = calibrate_novelty(
        args.novelty,
        args.archive,
        args.out,
        alerts_per_day=args.alerts_per_day,
        labels=args.labels,
        progress=not args.no_progress,
        calibration_archive=args.calibration_archive,
    )
    cal = card.metrics["novelty_calibration"]
    sc = card.scoring
    assert sc is not None
    print(
        f"autoencoder v{card.version} written to {args.out}: novelty centre {sc.novelty_center:.4g}, spread "
        f"{sc.novelty_scale:.4g}; threshold {card.thresholds['anomaly']:.5g} (was {cal['threshold_before']:.5g}; "
        f"{cal['frames']} normal frames, {cal['hours_covered']} of 24 hours)"
    )
    return 0
