"""``satwatch evaluate``: recompute the models' figures and write the Markdown report with its plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from satwatch.cli import add_config_argument
from satwatch.services.detection.scores import COLUMNS as SCORE_COLUMNS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate the ONNX encoder and anomaly autoencoder and write a Markdown report",
        description=(
            "Evaluate the frame encoder and the anomaly autoencoder with ONNX Runtime (no PyTorch needed) "
            "and write OUT/README.md with plots: ground-truth similarity vs embedding distance (Pearson, "
            "Spearman, top-10 similarity, recall@10 on the held-out test block), example retrievals, "
            "training curves from the model cards, ROC AUC / average precision / detection delay per event "
            "kind and false alerts per normal day on a held-out simulated period (or, with --archive, on that "
            "archive: its labelled events, from --labels or its own labels.json/labels.tsv, and its unlabelled "
            "frames, which count the false alerts; an archive without labels is all normal frames), and anomaly "
            "maps; beside "
            "the autoencoder alone, what the detector decides: fault kinds by its data-quality checks, weather kinds "
            "by the score, false alerts per normal day for weather and for data quality. --scores-out writes every "
            "scored frame's score, terms and the alert the detector raises (TSV) for your own curves."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("docs/report"), help="report folder (default: %(default)s)")
    p.add_argument(
        "--model-dir",
        type=Path,
        help="folder with encoder.onnx and/or autoencoder.onnx and their cards, e.g. a 'satwatch train --out' "
        "folder; a model it lacks is the shipped one (logged). Default: with --archive, the models its satellite "
        "profile names (COMS-1: encoder-v3 and autoencoder-v2, for real imagery), or for a procedural simulated "
        "archive the set trained on that simulator (onnx_models); else the shipped root set",
    )
    p.add_argument(
        "--archive",
        type=Path,
        help="archive for the encoder evaluation (its last 60%% is the test block) and the anomaly evaluation "
        "(without labels its frames all count as normal: false alerts and the score distribution); default: the "
        "simulated archive the encoder was trained on (as its card records)",
    )
    p.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="the archive's event labels (TSV or JSON: kind, start, end, optional region; docs/models.md): default: "
        "the archive's own labels.json or labels.tsv, else every frame is normal",
    )
    p.add_argument(
        "--scores-out",
        type=Path,
        metavar="FILE",
        help=f"write every scored frame's score and terms as TSV ({', '.join(SCORE_COLUMNS)}; alert is what the "
        "detector raises: a data-quality kind, anomaly or nothing)",
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
    from satwatch.services.frames.profiles import get_profile
    from satwatch.services.models.locate import archive_models
    from satwatch.services.models.modelcard import packaged_model_dir
    from satwatch.services.training.data import load_archive
    from satwatch.services.training.labels import default_labels
    from satwatch.services.training.pipeline import autoencoder_test_frames, encoder_frames
    from satwatch.services.training.report import encoder_test_windows, write_report

    if args.archive is not None and not args.archive.is_dir():
        raise FileNotFoundError(f"archive directory {args.archive} does not exist")
    if args.labels is not None and args.archive is None:
        raise ValueError("--labels describes an archive's events: give --archive DIR too")
    if args.labels is not None and not args.labels.is_file():
        raise FileNotFoundError(f"labels file {args.labels} does not exist")
    if args.scores_out is not None and args.skip_anomaly:
        raise ValueError("--scores-out records the autoencoder's scores: drop --skip-anomaly")
    # An archive is read once (its own labels.json/labels.tsv when --labels is not given; without either,
    # every frame counts as normal weather) and serves both the encoder and the anomaly evaluation: the
    # simulated held-out week belongs to the simulator's models, not to the set an archive is served.
    labelled = load_archive(args.archive, not args.no_progress, labels=args.labels) if args.archive else None
    # No --model-dir: an archive's frames are served as the detector serves them (the rule of index build and
    # search too): a procedural simulated archive by the set trained on that simulator, any other by its
    # satellite profile's models (COMS-1: encoder v3, autoencoder v2); the simulated test period by the root set.
    profile = get_profile(labelled.satellite if labelled is not None else "COMS-1") if args.archive else None
    choice = archive_models(args.archive, profile, args.model_dir)
    dirs = choice.dirs
    root = packaged_model_dir()
    print(f"models: encoder {dirs.encoder or root}, autoencoder {dirs.autoencoder or root} ({choice.why})")
    enc = None
    if not args.skip_encoder:
        from satwatch.services.models.embedding import FrameEncoder

        # Without --archive, rebuild the simulated archive the encoder was trained on, so that its test
        # block is the one held out in training.
        sim = FrameEncoder.load(dirs.encoder).card.metrics.get("simulation", {})
        enc = labelled or encoder_frames(args.archive, args.cache, days=args.days or sim.get("days"))[0]
        encoder_test_windows(enc)  # too short an archive says so now, before the autoencoder's evaluation
    events = twin = None
    period = None
    if not args.skip_anomaly and labelled is not None:
        events = labelled
        label_file = args.labels or default_labels(args.archive)
        span = f"{len(events)} frames {events.times[0]:%Y-%m-%d %H:%M} to {events.times[-1]:%Y-%m-%d %H:%M}"
        if label_file is None:
            period = (
                f"archive {args.archive.name} without labels (no --labels, no labels.json or labels.tsv in it): "
                f"{span}, all counted as normal weather, so only false alerts and the score distribution are "
                "measured"
            )
        else:
            period = (
                f"archive {args.archive.name} with labels {label_file.name}: {span}, "
                f"{int((~events.normal()).sum())} labelled event frames"
            )
    elif not args.skip_anomaly:
        events, twin = autoencoder_test_frames(args.cache)
    path = write_report(
        args.out,
        dirs,
        enc,
        events,
        twin,
        progress=not args.no_progress,
        period=period,
        scores_out=args.scores_out,
    )
    if args.scores_out is not None:
        print(f"frame scores written to {args.scores_out}")
    print(f"report written to {path}")
    return 0
