"""End-to-end recipes behind ``satwatch train``: data (an archive or the simulator), training, export.

Default data when no archive is given (all simulated, cached under ``cache_dir``):

* encoder: 14 days from 2024-07-01, simulator seed 101, events on (weather events make the ground truth
  varied); split 20:20:60 by time.
* autoencoder: normal weather only, all on one coastline (a satellite's view of the Earth is fixed): 40
  seeds x 6 h (train) and 16 other seeds x 6 h (validation, threshold calibration), starting in different
  months and at different hours, so that together they cover every hour of the day in every season (the
  model is conditioned on time of day; a night it never saw is not "normal").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from satwatch.services.models.modelcard import ModelCard
from satwatch.services.training.data import FrameSet, concat, load_archive, simulate_frames

log = logging.getLogger(__name__)

ENCODER_SIM = {"seed": 101, "days": 14.0}
#: (seed, days, start month, start hour UTC): many short runs for weather, season and time-of-day variety.
#: Runs i and i + 12 share a month (5 * 12 = 0 mod 12) and start 6 h apart, so each month gets
#: up to four quarters of the day.
AE_TRAIN_SEEDS = [(500 + i, 0.25, 1 + (5 * i) % 12, (6 * i + 6 * (i // 12)) % 24) for i in range(40)]
AE_VALID_SEEDS = [(600 + i, 0.25, 1 + (5 * i + 2) % 12, (6 * i + 3 + 6 * (i // 12)) % 24) for i in range(16)]
#: The coastline of every autoencoder run: that of the default simulated satellite (seed 7), because a real
#: satellite's anomaly model learns and is judged on one fixed view of the Earth.
AE_GEOGRAPHY = 7
#: Held-out evaluation period: its own seed, events on, plus the same seed without events. Seeds 303 and 909
#: were looked at while choosing the model's resolution and score, so the reported figures come from a
#: seed that was not.
AE_TEST_SIM = {"seed": 1303, "days": 7.0}
#: Labelled development periods (seed, days): where the resolution and score were chosen, and what picks
#: among training runs (``--candidates``). The first two alone (10 days) proved too few events to choose
#: by: choices they favoured did not carry over to unseen weeks; three more weeks were added for v1.4.
AE_DEV_SIMS = [(303, 3.0), (909, 7.0), (1909, 7.0), (2909, 7.0), (3909, 7.0)]


@dataclass
class TrainOptions:
    out: Path
    epochs: int | None = None
    batch_size: int = 32
    lr: float | None = None
    seed: int = 0
    device: str = "cpu"
    resume: Path | None = None
    progress: bool = True


def _run_start(month: int, hour: int) -> datetime:
    return datetime(2024, month, 1, hour, tzinfo=UTC)


def encoder_frames(archive: Path | None, cache_dir: Path, days: float | None = None) -> tuple[FrameSet, str]:
    """The encoder's frames and a one-line description of them for the model card."""
    if archive is not None:
        fs = load_archive(archive)
        return fs, f"archive {archive.name}: {len(fs)} frames {fs.times[0]:%Y-%m-%d} to {fs.times[-1]:%Y-%m-%d}"
    d = days or ENCODER_SIM["days"]
    fs = simulate_frames(int(ENCODER_SIM["seed"]), d, True, cache_dir=cache_dir)
    return fs, (
        f"simulated: seed {ENCODER_SIM['seed']}, {d:g} days from {fs.times[0]:%Y-%m-%d}, events on, "
        f"{len(fs)} frames at 15 min; split 20:20:60 (train/valid/test) by contiguous time blocks"
    )


def autoencoder_frames(archive: Path | None, cache_dir: Path, scale: float = 1.0) -> tuple[FrameSet, FrameSet, str]:
    """Normal-weather training and validation frames, and their description.

    From an archive: frames with no labelled event, the first 80% of the time span for training and the
    rest for validation. ``scale`` shortens the simulated default (for tests).
    """
    if archive is not None:
        fs = load_archive(archive)
        keep = np.flatnonzero(fs.normal())
        cut = int(len(keep) * 0.8)

        def sub(idx: np.ndarray) -> FrameSet:
            return FrameSet(fs.satellite, [fs.times[i] for i in idx], fs.data[idx], [() for _ in idx])

        return sub(keep[:cut]), sub(keep[cut:]), f"archive {archive.name}: {len(keep)} normal frames, 80:20 by time"

    def sims(spec: list[tuple[int, float, int, int]]) -> FrameSet:
        runs = [simulate_frames(s, d * scale, False, _run_start(m, h), cache_dir, AE_GEOGRAPHY) for s, d, m, h in spec]
        return concat(runs)

    train, valid = sims(AE_TRAIN_SEEDS), sims(AE_VALID_SEEDS)
    desc = (
        f"simulated normal weather (events off): train {len(train)} frames from seeds "
        f"{AE_TRAIN_SEEDS[0][0]}-{AE_TRAIN_SEEDS[-1][0]} (6 h each, starting in months 1-12 at hours spread over "
        f"the day), validation {len(valid)} frames from seeds {AE_VALID_SEEDS[0][0]}-{AE_VALID_SEEDS[-1][0]}; all on "
        f"the coastline of seed {AE_GEOGRAPHY}"
    )
    return train, valid, desc


def autoencoder_test_frames(cache_dir: Path, scale: float = 1.0) -> tuple[FrameSet, FrameSet]:
    """The held-out period with labelled events and its event-free twin (same seed, same weather)."""
    seed, days = int(AE_TEST_SIM["seed"]), AE_TEST_SIM["days"] * scale
    return (
        simulate_frames(seed, days, True, cache_dir=cache_dir, geography=AE_GEOGRAPHY),
        simulate_frames(seed, days, False, cache_dir=cache_dir, geography=AE_GEOGRAPHY),
    )


def run_encoder(
    opts: TrainOptions, archive: Path | None, cache_dir: Path, days: float | None = None, stride: int = 4
) -> ModelCard:
    """Prepare data, train, evaluate on the test block and export ``encoder.onnx`` + card into ``opts.out``."""
    from satwatch.services.training.encoder import export_encoder, prepare_encoder_data, train_encoder

    frames, desc = encoder_frames(archive, cache_dir, days)
    data = prepare_encoder_data(frames, stride=stride, progress=opts.progress)
    result = train_encoder(
        data,
        opts.out,
        epochs=opts.epochs if opts.epochs is not None else 10,
        batch_size=opts.batch_size,
        lr=opts.lr if opts.lr is not None else 1e-3,
        seed=opts.seed,
        device=opts.device,
        resume=opts.resume,
        progress=opts.progress,
    )
    metrics: dict[str, Any] = {**result.metrics, "history": result.history}
    if archive is None:
        # lets `satwatch evaluate` rebuild the very same test block
        metrics["simulation"] = {"seed": int(ENCODER_SIM["seed"]), "days": days or ENCODER_SIM["days"]}
    return export_encoder(result.model, opts.out, metrics, desc)


def autoencoder_dev_frames(cache_dir: Path, scale: float = 1.0) -> FrameSet:
    """The labelled development periods (events on) that pick among autoencoder training runs."""
    return concat(
        [
            simulate_frames(seed, days * scale, True, cache_dir=cache_dir, geography=AE_GEOGRAPHY)
            for seed, days in AE_DEV_SIMS
        ]
    )


def run_autoencoder(
    opts: TrainOptions,
    archive: Path | None,
    cache_dir: Path,
    alerts_per_day: float = 0.5,
    baseline: bool = True,
    scale: float = 1.0,
    candidates: int = 1,
) -> ModelCard:
    """Train the conditioned AE (and the unconditioned baseline), calibrate, evaluate, export + card.

    With ``candidates`` > 1 the conditioned network is trained that many times (seeds ``opts.seed`` upwards,
    each in its own sub-folder) and the run with the best ROC AUC on the labelled development periods is kept:
    runs differ a lot on the weather events (CPU training is not bit-reproducible either), and the held-out
    period must not be what chooses. Development periods exist only for the simulated default.
    """
    from satwatch.services.training.autoencoder import (
        calibrate_threshold,
        export_autoencoder,
        model_scores,
        prepare_inputs,
        train_autoencoder,
        with_consistency,
    )
    from satwatch.services.training.evaluation import anomaly_metrics
    from satwatch.services.training.metrics import roc_auc

    if candidates > 1 and archive is not None:
        raise ValueError("--candidates needs the simulated default: an archive has no labelled development period")
    train, valid, desc = autoencoder_frames(archive, cache_dir, scale)
    xt, ct = prepare_inputs(train, opts.progress)
    xv, cv = prepare_inputs(valid, opts.progress)
    test_ev, test_normal = autoencoder_test_frames(cache_dir, scale)
    xe, ce = prepare_inputs(test_ev, opts.progress)
    xn, cn = prepare_inputs(test_normal, opts.progress)
    dev = autoencoder_dev_frames(cache_dir, scale) if candidates > 1 else None
    # One consistency group per simulated run (its own weather and season), else ten blocks of time.
    groups = len(AE_TRAIN_SEEDS) if archive is None else 10
    epochs = opts.epochs if opts.epochs is not None else 8
    lr = opts.lr if opts.lr is not None else 2e-3

    def fit(conditioned: bool, seed: int, out: Path, resume: Path | None) -> tuple[Any, Any, Any]:
        result = train_autoencoder(
            xt,
            ct,
            xv,
            cv,
            out,
            epochs=epochs,
            batch_size=opts.batch_size,
            lr=lr,
            seed=seed,
            device=opts.device,
            resume=resume,
            conditioned=conditioned,
            progress=opts.progress,
        )
        scored, scoring = with_consistency(result.model, xt, ct, xv, cv, groups)
        return result, scored, scoring

    def resume_from(sub: str, conditioned: bool, first: bool) -> Path | None:
        # A checkpoint file continues the first run; a folder (an earlier --out) continues each run from its
        # own checkpoint there, so a finished run is re-exported rather than trained again.
        if opts.resume is None or opts.resume.is_file():
            return opts.resume if first else None
        ckpt = opts.resume / sub / ("autoencoder.ckpt" if conditioned else "autoencoder-unconditioned.ckpt")
        return ckpt if ckpt.is_file() else None

    subs = [""] if candidates <= 1 else [f"candidate-{i}" for i in range(candidates)]
    runs = [fit(True, opts.seed + i, opts.out / sub, resume_from(sub, True, i == 0)) for i, sub in enumerate(subs)]
    chosen = runs[0]
    tried: list[dict[str, Any]] = []
    if dev is not None:
        xd, cd = prepare_inputs(dev, opts.progress)
        labels = [bool(lab) for lab in dev.labels]
        aucs = [roc_auc(model_scores(scored, xd, cd, scoring=scoring), labels) for _, scored, scoring in runs]
        tried = [{"seed": opts.seed + i, "dev_roc_auc": auc} for i, auc in enumerate(aucs)]
        log.info("autoencoder candidates, development ROC AUC: %s", tried)
        chosen = runs[int(np.argmax(aucs))]
    evaluated = [("conditioned", chosen)]
    if baseline:
        evaluated.append(("unconditioned_baseline", fit(False, opts.seed, opts.out, resume_from("", False, False))))
    kinds: dict[str, Any] = {}
    for key, (result, scored, scoring) in evaluated:
        threshold = calibrate_threshold(model_scores(scored, xv, cv, scoring=scoring), alerts_per_day)
        m = anomaly_metrics(
            model_scores(scored, xe, ce, scoring=scoring),
            test_ev.labels,
            model_scores(scored, xn, cn, scoring=scoring),
            threshold,
        )
        kinds[key] = {"threshold": threshold, **m, "best_epoch": result.best_epoch, "history": result.history}
    _, chosen_model, chosen_scoring = chosen
    kinds["conditioned"]["consistency_scale"] = [float(v) for v in chosen_model.consistency.scale]
    if tried:
        dev_desc = ", ".join(f"seed {seed} ({days * scale:g} d)" for seed, days in AE_DEV_SIMS)
        kinds["conditioned"]["candidates"] = {"development_periods": dev_desc, "runs": tried}
    cards_metrics = {
        "test_data": (
            f"held-out simulation seed {AE_TEST_SIM['seed']}, {AE_TEST_SIM['days'] * scale:g} days with labelled "
            "events, and the same seed with events off for false alerts per normal day"
        ),
        **kinds,
    }
    return export_autoencoder(
        chosen_model,
        opts.out,
        kinds["conditioned"]["threshold"],
        cards_metrics,
        desc,
        alerts_per_day,
        scoring=chosen_scoring,
    )
