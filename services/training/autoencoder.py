"""Training of the time-conditioned anomaly autoencoder on normal weather, threshold calibration, export."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.models.anomaly import (
    AUTOENCODER_CARD,
    AUTOENCODER_FILE,
    TIME_FEATURES,
    aggregate_score,
    combine_scores,
    time_features,
    typical_error,
)
from satwatch.services.models.modelcard import (
    Conditioning,
    ModelCard,
    Normalisation,
    Scoring,
    TensorSpec,
    normalise,
)
from satwatch.services.training.checkpoint import TrainState, load_checkpoint, save_checkpoint
from satwatch.services.training.data import FrameSet
from satwatch.services.training.encoder import TrainResult
from satwatch.services.training.export import export_onnx, finish_card
from satwatch.services.training.models import (
    ChannelConsistency,
    ConditionedAutoencoder,
    PatchTexture,
    ScanLineCheck,
    ScoredAutoencoder,
)

log = logging.getLogger(__name__)

#: The autoencoder sees frames box-averaged to 152 rows x 176 columns (about half the shrunk frame, so a
#: storm's eye a few pixels wide survives; at 96 x 80 it averaged away), pixels scaled to [0, 1], plus the
#: pixel standard deviation inside each cell (x 4/255) so sub-cell faults (striping, dropped lines) show.
AE_NORMALISATION = Normalisation(
    channels=list(CHANNELS),
    height=152,
    width=176,
    resample="box",
    scale=[1 / 255.0] * 4,
    offset=[0.0] * 4,
    features=["mean", "std"],
    std_scale=4.0 / 255.0,
)
AE_CHANNELS = len(AE_NORMALISATION.channels) * len(AE_NORMALISATION.features)
#: Pixel score: the mean of the worst 5 heat-map pixels, so an eye or a small new cell counts as much as a large
#: diffuse fault.
WORST_PIXELS = 5
SCORING = Scoring(
    aggregate="top_fraction_mean",
    fraction=WORST_PIXELS / (AE_NORMALISATION.height * AE_NORMALISATION.width),
    error_output="error",
)
FRAMES_PER_DAY = 96
#: The network sees where each pixel lies (row and column planes), so it can learn that cloud tops colder than
#: a latitude's normal weather (deep convection, a typhoon's core) are unusual there. Averaged over runs the
#: planes neither help nor hurt measurably; the recipe keeps them because the shipped run (v1.5) has them.
AE_POSITION = True


def prepare_inputs(frames: FrameSet, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs (N,4,96,80) float32 and time features (N,4) of every frame."""
    x = np.empty((len(frames), AE_CHANNELS, AE_NORMALISATION.height, AE_NORMALISATION.width), dtype=np.float32)
    for s in tqdm(range(0, len(frames), 64), desc="autoencoder inputs", disable=None if progress else True):
        x[s : s + 64] = normalise(frames.data[s : s + 64], AE_NORMALISATION)
    return x, time_features(frames.times)


#: A frame-level check (channel consistency, scan lines) adds to the score only beyond this multiple of the
#: largest value normal frames reach: the consistency check on the normal validation runs (weather and
#: seasons its fit has not seen), the scan-line check on the training frames. Below it, where normal frames
#: stay, the ranking of the pixel score is untouched. Normal frames reach about 2.6 residual spreads, while
#: a calibration jump of 15 grey levels in ir01, ir02 or wv lies 50 or more spreads out and one of 20 in
#: short-wave infrared (the loosest channel, its spread about 2.9 grey levels) about 7.
CHECK_MARGIN = 1.5
#: Shrinkage of each patch position's covariance towards its diagonal (:func:`fit_texture`). On the texture
#: scene (6 normal days to fit, held-out streams of other seeds and months) 0.05 ranked events best; 0.3 and 0.7
#: lost 0.02-0.08 ROC AUC on convection.
TEXTURE_SHRINK = 0.05
#: Patches whose distances make the texture output (their mean). Chosen on the development stream (texture seed
#: 501): 4 ranked convection best (0.975 against 0.969 for 8 and 0.953 for 16), a young cell covering few patches.
TEXTURE_TOP = 4
#: Channels the patch-texture check describes. Not swir: its sunlit part is what the texture scene (the training
#: data) reproduces least (on the study's real 06:45 UTC frame, patch means of swir sat 7 standard deviations
#: from the scene's at the same sun height, every other feature within 1.4), and a density of simulated
#: sunlit swir would flag real afternoons. Weather events show in the other three; swir faults are the
#: consistency and data-quality checks' concern.
TEXTURE_CHANNELS = ("ir01", "ir02", "wv")


class FrameOutputs(NamedTuple):
    """A model's per-frame outputs over many frames (None where the model has no such output)."""

    pixel: np.ndarray  # the worst pixels of the error map, aggregated (the pixel score)
    consistency: np.ndarray | None
    lines: np.ndarray | None
    texture: np.ndarray | None
    typical: np.ndarray  # the median per-pixel error (anomaly.typical_error)


def frame_outputs(
    model: ConditionedAutoencoder | ScoredAutoencoder, x: np.ndarray, cond: np.ndarray, batch: int = 128
) -> FrameOutputs:
    """Pixel scores, typical errors and, for a ScoredAutoencoder, its consistency, scan-line and
    patch-texture outputs."""
    model.eval()
    outs: list[list[np.ndarray]] = [[], [], [], [], []]
    with torch.no_grad():
        for s in range(0, len(x), batch):
            out = model(torch.from_numpy(x[s : s + batch]), torch.from_numpy(cond[s : s + batch]))
            error = out[1].numpy()
            outs[0].append(aggregate_score(error, SCORING.fraction))
            outs[4].append(typical_error(error))
            for i, extra in enumerate(out[2:5], start=1):  # the texture map (out[5]) is for run time only
                outs[i].append(extra.numpy())
    pix, typical = (np.concatenate(o) if o else np.zeros(0, dtype=np.float32) for o in (outs[0], outs[4]))
    cons, lines, texture = (np.concatenate(o) if o else None for o in outs[1:4])
    return FrameOutputs(pix, cons, lines, texture, typical)


def model_scores(
    model: ConditionedAutoencoder | ScoredAutoencoder,
    x: np.ndarray,
    cond: np.ndarray,
    batch: int = 128,
    scoring: Scoring | None = None,
) -> np.ndarray:
    """Anomaly scores of many frames with a PyTorch model, aggregated as ``scoring`` says (default: pixels only)."""
    pix, cons, lines, texture, _ = frame_outputs(model, x, cond, batch)
    return combine_scores(pix, cons, scoring or SCORING, lines, texture)


def fit_consistency(x: np.ndarray, cond: np.ndarray, groups: int) -> ChannelConsistency:
    """Fit the channel-consistency check on normal frames ``x`` (N,C,H,W) with time features ``cond``.

    Least squares per channel; the residual scale is the RMS of leave-one-group-out residuals, the frames
    cut into ``groups`` contiguous groups (for the simulated data, one per run), so the scale covers
    weather and a season the fit has not seen, not just the fit's own residuals.
    """
    check = ChannelConsistency(channels=len(AE_NORMALISATION.channels))
    with torch.no_grad():
        xt, ct = torch.from_numpy(x), torch.from_numpy(cond)
        m = torch.cat([check.means(xt[s : s + 256]) for s in range(0, len(xt), 256)]).double()
        feats = check.features(m, ct.double()).numpy()
    y = m.numpy()
    mask = ChannelConsistency.feature_mask(check.channels).numpy()
    group = np.minimum(np.arange(len(y)) * max(1, groups) // len(y), max(1, groups) - 1)
    weight = np.zeros(mask.shape)
    scale = np.zeros(check.channels)
    for c in range(check.channels):
        a = feats[:, mask[c]]
        weight[c, mask[c]] = np.linalg.lstsq(a, y[:, c], rcond=None)[0]
        res = np.empty(len(y))
        for g in np.unique(group):
            out = group == g
            if out.all():
                res[out] = y[out, c] - a[out] @ weight[c, mask[c]]
                continue
            w = np.linalg.lstsq(a[~out], y[~out, c], rcond=None)[0]
            res[out] = y[out, c] - a[out] @ w
        scale[c] = max(float(np.sqrt(np.mean(res**2))), 1e-6)
    check.weight.copy_(torch.from_numpy(weight).float())
    check.scale.copy_(torch.from_numpy(scale).float())
    return check.eval()


def fit_scan_lines(x: np.ndarray) -> tuple[ScanLineCheck, float]:
    """Fit the scan-line check on normal frames ``x``: per-channel RMS scale, and a gate of CHECK_MARGIN times
    the largest value a normal frame reaches."""
    check = ScanLineCheck(channels=len(AE_NORMALISATION.channels))
    with torch.no_grad():
        xt = torch.from_numpy(x)
        z = torch.cat([check.zigzag(xt[s : s + 256]) for s in range(0, len(xt), 256)]).double()
        check.scale.copy_(z.pow(2).mean(dim=(0, 2)).sqrt().clamp(min=1e-6).float())
        top = float(torch.cat([check(xt[s : s + 256]) for s in range(0, len(xt), 256)]).max())
    return check.eval(), CHECK_MARGIN * top


def patch_lat_lon(rows: int, cols: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude (degrees, (rows, cols)) of the centres of ``rows`` x ``cols`` patches of the model
    input (``height`` x ``width``, the COMS-1 shrunk frame's 300 rows below the title band resampled).

    The area is taken as linear in latitude and longitude, 55-0 N and 100-158 E over native rows 100-1299, as
    the simulators take it: a degree or two off at the edges, which moves the sun's height by less than the
    patches' own extent does.
    """
    from satwatch.services.simulator.texturebank import LAT_NORTH, LAT_SOUTH, LON_EAST, LON_WEST

    patch_r, patch_c = height // rows, width // cols
    frac_r = (np.arange(rows) * patch_r + patch_r / 2) / height
    frac_c = (np.arange(cols) * patch_c + patch_c / 2) / width
    lat = LAT_NORTH + (LAT_SOUTH - LAT_NORTH) * frac_r
    lon = LON_WEST + (LON_EAST - LON_WEST) * frac_c
    return np.repeat(lat[:, None], cols, axis=1), np.repeat(lon[None, :], rows, axis=0)


def fit_texture(x: np.ndarray, cond: np.ndarray, shrink: float = TEXTURE_SHRINK) -> PatchTexture:
    """Fit the patch-texture check on normal frames ``x`` (N,C,H,W) with time features ``cond``.

    Per patch position, the mean and covariance of the patch descriptors; the covariance is shrunk by
    ``shrink`` towards its diagonal (a few hundred frames estimate 18 x 18 covariances poorly, and an
    over-confident one flags tomorrow's ordinary weather), inverted, and kept as its Cholesky factor.
    """
    channels = list(AE_NORMALISATION.channels)
    described = tuple(channels.index(c) for c in TEXTURE_CHANNELS)
    check = PatchTexture(len(channels), x.shape[2], x.shape[3], top=TEXTURE_TOP, described=described)
    check.set_geometry(*patch_lat_lon(check.rows, check.cols, x.shape[2], x.shape[3]))
    with torch.no_grad():
        xt, ct = torch.from_numpy(x), torch.from_numpy(cond)
        f = torch.cat([check.features(xt[s : s + 128], ct[s : s + 128]) for s in range(0, len(xt), 128)]).double()
    mean = f.mean(dim=0)  # (positions, features)
    centred = f - mean[None]
    cov = torch.einsum("npi,npj->pij", centred, centred) / max(1, len(f) - 1)
    eye = torch.eye(cov.shape[1], dtype=cov.dtype)
    diag = torch.diagonal(cov, dim1=1, dim2=2)
    cov = (1 - shrink) * cov + shrink * diag[:, :, None] * eye + 1e-9 * eye
    # inv = L L^T, so |L^T (f - mean)| is the Mahalanobis distance.
    chol = torch.linalg.cholesky(torch.linalg.inv(cov))
    check.mean.copy_(mean.float())
    check.whiten.copy_(chol.transpose(1, 2).float())
    return check.eval()


def with_consistency(
    model: ConditionedAutoencoder,
    x_train: np.ndarray,
    c_train: np.ndarray,
    x_valid: np.ndarray,
    c_valid: np.ndarray,
    groups: int,
    texture: bool = True,
) -> tuple[ScoredAutoencoder, Scoring]:
    """Attach the frame-level checks to a trained autoencoder (channel consistency, scan lines and, with
    ``texture``, the patch-texture check); set up the combined scoring.

    The pixel score and the texture output are standardised by their normal-validation mean and standard
    deviation; with the texture check the weather term is the larger of the texture term and what the pixel
    term has beyond its gate. Each gate (pixel, consistency, scan lines) is CHECK_MARGIN times the largest value
    normal validation frames reach.
    """
    lines, lines_gate = fit_scan_lines(x_train)
    patches = fit_texture(x_train, c_train) if texture else None
    scored = ScoredAutoencoder(model.cpu().eval(), fit_consistency(x_train, c_train, groups), lines, patches).eval()
    pix, consistency, _, tex, typical = frame_outputs(scored, x_valid, c_valid)
    assert consistency is not None
    update: dict[str, Any] = {
        "aggregate": "with_consistency",
        "consistency_output": "consistency",
        "lines_output": "lines",
        "lines_gate": lines_gate,
        **normal_standardisation(pix, consistency, tex, typical),
    }
    if tex is not None:
        update |= {"texture_output": "texture", "texture_map_output": "texture_map"}
    return scored, SCORING.model_copy(update=update)


def normal_standardisation(
    pix: np.ndarray, consistency: np.ndarray, tex: np.ndarray | None, typical: np.ndarray
) -> dict[str, float]:
    """The scoring's centres, spreads and gates fitted on normal frames' raw outputs (pixel score, consistency,
    patch-texture, typical error): what calibration fits, apart from the threshold.

    One function for training and for recalibration on other streams, so both standardise alike.
    """
    fitted = {
        "pixel_center": float(np.mean(pix)),
        "pixel_scale": float(max(np.std(pix), 1e-6)),
        "consistency_gate": CHECK_MARGIN * float(consistency.max()),
        # What normal frames' median error reaches: far beyond it, the imagery is not what the model learned.
        "domain_error_max": float(typical.max()),
    }
    if tex is not None:
        pix_z = (pix - fitted["pixel_center"]) / fitted["pixel_scale"]
        fitted |= {
            # The reconstruction term joins the weather term only beyond what normal frames reach.
            "pixel_gate": CHECK_MARGIN * float(max(pix_z.max(), 0.0)),
            "texture_center": float(np.mean(tex)),
            "texture_scale": float(max(np.std(tex), 1e-6)),
        }
    return fitted


def calibrate_threshold(
    normal_scores: np.ndarray, alerts_per_day: float = 0.5, frames_per_day: float = FRAMES_PER_DAY
) -> float:
    """Smallest threshold such that normal frames exceed it at most ``alerts_per_day`` times per day.

    Scores strictly above the threshold alert. With D days of normal data, at most floor(rate * D)
    validation frames may exceed it; the threshold is placed halfway to the next larger score. D counts
    ``frames_per_day`` frames a day (96 at COMS's 15 minutes; an archive's own cadence otherwise).
    """
    s = np.sort(np.asarray(normal_scores, dtype=np.float64))[::-1]
    if len(s) == 0:
        raise ValueError("threshold calibration needs normal validation scores")
    days = len(s) / frames_per_day
    allowed = int(math.floor(alerts_per_day * days))
    if allowed >= len(s):
        return float(s[-1])
    hi = s[allowed - 1] if allowed > 0 else s[allowed] * 1.05
    return float((s[allowed] + hi) / 2.0)


def train_autoencoder(
    x_train: np.ndarray,
    c_train: np.ndarray,
    x_valid: np.ndarray,
    c_valid: np.ndarray,
    out_dir: str | Path,
    epochs: int = 20,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    device: str = "cpu",
    resume: str | Path | None = None,
    conditioned: bool = True,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    position: bool = AE_POSITION,
) -> TrainResult[ConditionedAutoencoder]:
    """Train on normal frames (Gaussian NLL); keep the epoch with the lowest validation loss; checkpoint each epoch."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = ConditionedAutoencoder(channels=x_train.shape[1], cond_dim=4 if conditioned else 0, coords=position)
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    ckpt_path = out / ("autoencoder.ckpt" if conditioned else "autoencoder-unconditioned.ckpt")
    history: list[dict[str, float]] = []
    best: tuple[float, int] = (math.inf, 0)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    start_epoch = 0
    if resume is not None:
        resumed = load_checkpoint(resume, model, opt, sched, device)
        history, best, best_state, start_epoch = resumed.history, resumed.best, resumed.best_state, resumed.epoch
    xt, ct = torch.from_numpy(x_train), torch.from_numpy(c_train)
    xv, cv = torch.from_numpy(x_valid).to(device), torch.from_numpy(c_valid).to(device)
    rng = np.random.default_rng(seed + start_epoch)
    for epoch in range(start_epoch, epochs):
        model.train()
        order = rng.permutation(len(xt))
        losses = []
        bar = tqdm(
            range(0, len(order), batch_size),
            desc=f"autoencoder epoch {epoch + 1}/{epochs}",
            disable=None if progress else True,
            leave=False,
        )
        for s in bar:
            pick = torch.from_numpy(order[s : s + batch_size])
            xb, cb = xt[pick].to(device), ct[pick].to(device)
            loss = model.nll(xb, cb)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.5f}")
        sched.step()
        model.eval()
        with torch.no_grad():
            vloss = float(
                np.mean([float(model(xv[i : i + 128], cv[i : i + 128])[1].mean()) for i in range(0, len(xv), 128)])
            )
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "valid_loss": vloss}
        history.append(row)
        if vloss < best[0]:
            best = (vloss, epoch + 1)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch:
            on_epoch(row)
        log.info("autoencoder epoch %d: %s", epoch + 1, row)
        save_checkpoint(ckpt_path, model, opt, sched, TrainState(history, best, best_state, epoch + 1))
    if not ckpt_path.is_file():
        # Resumed with no epoch left to run: the new folder still gets the run's checkpoint, so it can be
        # resumed from in turn.
        save_checkpoint(ckpt_path, model, opt, sched, TrainState(history, best, best_state, start_epoch))
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model=model, history=history, best_epoch=int(best[1]))


def export_autoencoder(
    model: ConditionedAutoencoder | ScoredAutoencoder,
    out_dir: str | Path,
    threshold: float,
    metrics: dict[str, Any],
    training_data: str,
    false_alert_rate: float,
    version: str = "2.0.0",
    scoring: Scoring | None = None,
) -> ModelCard:
    """Export ``autoencoder.onnx`` (checked against PyTorch) and write ``autoencoder.card.json``.

    A ScoredAutoencoder adds the ``consistency`` and ``lines`` outputs (N,) each, and ``texture`` (N,) with
    ``texture_map`` (N, rows, cols) when it has the patch-texture check; pass the ``scoring`` that uses them.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h, w = AE_NORMALISATION.height, AE_NORMALISATION.width
    # A copy, so the caller's model keeps training-time position planes while the graph gets constant maps.
    model = copy.deepcopy(model).cpu().eval()
    (model.autoencoder if isinstance(model, ScoredAutoencoder) else model).fold_position(h, w)
    c = int(model.config["channels"])
    example = (torch.rand(3, c, h, w), torch.from_numpy(time_features([datetime.now(UTC)] * 3)))
    names = ["reconstruction", "error"]
    extra: list[TensorSpec] = []
    if isinstance(model, ScoredAutoencoder):
        for name in ("consistency", "lines", *(("texture",) if model.texture is not None else ())):
            names.append(name)
            extra.append(TensorSpec(name=name, shape=["batch"]))
        if model.texture is not None:
            names.append("texture_map")
            extra.append(TensorSpec(name="texture_map", shape=["batch", model.texture.rows, model.texture.cols]))
    worst = export_onnx(model, example, out / AUTOENCODER_FILE, ["frames", "time"], names)
    card = ModelCard(
        name="satwatch-anomaly-autoencoder",
        kind="autoencoder",
        version=version,
        file=AUTOENCODER_FILE,
        sha256="",
        input=TensorSpec(name="frames", shape=["batch", c, h, w]),
        outputs=[
            TensorSpec(name="reconstruction", shape=["batch", c, h, w]),
            TensorSpec(name="error", shape=["batch", h, w]),
            *extra,
        ],
        normalisation=AE_NORMALISATION,
        profile="COMS-1",
        conditioning=Conditioning(
            input=TensorSpec(name="time", shape=["batch", 4]),
            features=TIME_FEATURES,
            description=(
                "sin/cos of UTC time of day (fraction of 86400 s) and of day of year "
                "((yday - 1 + day fraction) / 365.25); the decoder is FiLM-modulated by them"
            ),
        ),
        scoring=scoring or SCORING,
        training_data=training_data,
        metrics={**metrics, "export_max_abs_diff": worst},
        thresholds={"anomaly": float(threshold), "false_alert_rate": float(false_alert_rate)},
        created=datetime.now(UTC),
    )
    return finish_card(card, out / AUTOENCODER_FILE, out / AUTOENCODER_CARD)
