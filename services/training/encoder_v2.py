"""Encoder v2: a learned map of a window's mean per-cell histograms, trained with the log-ratio loss.

The window embedding is no longer a mean of frame embeddings (DESIGN.md section 4 asks only that a new
frame cost O(1)). Per frame the runtime keeps the normalised histogram of every ground-truth cell
(numpy, exact, from the signature the re-rank keeps anyway); the window's feature is their running mean;
the exported graph takes that mean, takes square roots and maps it to 128 numbers. Training is v1's
protocol (20:20:60 time blocks, dense in-batch triplets, log-ratio loss, best validation Pearson kept) on
the archive's train block, plus the windows of any extra archives given for weather variety: principal
components fitted on one 8-day block alone miss most of the variance of later weather.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.metric.groundtruth import FrameSignature
from satwatch.services.models.embedding import ENCODER_CARD, ENCODER_FILE, hist_from_signature
from satwatch.services.models.modelcard import ModelCard, Normalisation, TensorSpec
from satwatch.services.training.data import FrameSet, block_windows, split_blocks
from satwatch.services.training.encoder import frame_signatures, log_ratio_loss, window_similarities
from satwatch.services.training.export import export_onnx, finish_card
from satwatch.services.training.metrics import RetrievalReport, pairwise_distances, retrieval_report
from satwatch.services.training.models import GT_BINS, GT_GRID, WindowHistEncoderNet

log = logging.getLogger(__name__)

VERSION = "2.0.0"


def frame_histograms(sigs: dict[int, FrameSignature], n_frames: int) -> np.ndarray:
    """(n_frames, C*(B+1), n, n) float32 per-cell normalised histograms; frames without a signature stay 0."""
    first = next(iter(sigs.values()))
    out = np.zeros((n_frames, first.channels * (first.spec.bins + 1), first.spec.n, first.spec.n), np.float32)
    for i, sig in sigs.items():
        out[i] = hist_from_signature(sig)
    return out


def window_features(hists: np.ndarray, windows: np.ndarray) -> torch.Tensor:
    """Mean histogram of each window (M, size) of frame indices: the graph's input, (M, C*(B+1), n, n)."""
    return torch.from_numpy(np.stack([hists[w].mean(axis=0) for w in windows]))


@dataclass
class WindowSet:
    """Windows of one split or extra archive: their mean histograms and ground-truth similarities."""

    windows: np.ndarray
    feats: torch.Tensor
    sim: np.ndarray


def _window_set(frames: FrameSet, windows: np.ndarray, progress: bool) -> WindowSet:
    sigs = frame_signatures(frames.data, windows, progress)
    hists = frame_histograms(sigs, len(frames))
    return WindowSet(windows, window_features(hists, windows), window_similarities(frames.data, windows, sigs=sigs))


@dataclass
class V2Data:
    splits: dict[str, WindowSet]
    extra: list[WindowSet]
    window_size: int


def prepare_v2_data(
    frames: FrameSet,
    extra: Sequence[FrameSet] = (),
    window_size: int = 20,
    stride: int = 4,
    extra_stride: int = 2,
    progress: bool = True,
) -> V2Data:
    """Split ``frames`` 20:20:60 by time (train windows at stride 1) and cut windows from ``extra`` archives."""
    splits = {}
    for name, block in zip(("train", "valid", "test"), split_blocks(len(frames)), strict=True):
        wins = block_windows(frames.times, block, window_size, 1 if name == "train" else stride)
        if len(wins) < 3:
            raise ValueError(
                f"the {name} block holds {len(wins)} windows of {window_size} frames; use a longer archive"
            )
        splits[name] = _window_set(frames, wins, progress)
    more = []
    for fs in extra:
        wins = block_windows(fs.times, range(len(fs)), window_size, extra_stride)
        if len(wins) >= 3:
            more.append(_window_set(fs, wins, progress))
    return V2Data(splits, more, window_size)


def evaluate_windows(model: WindowHistEncoderNet, ws: WindowSet, window_size: int = 20, k: int = 10) -> RetrievalReport:
    """Correlations and top-k retrieval; windows overlapping the query are not candidates."""
    model.eval()
    with torch.no_grad():
        emb = model(ws.feats).numpy()
    starts = ws.windows[:, 0]
    allowed = np.abs(starts[:, None] - starts[None, :]) >= window_size
    return retrieval_report(ws.sim, pairwise_distances(emb), k=k, allowed=allowed)


@dataclass
class V2Result:
    model: WindowHistEncoderNet
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


def train_v2(
    data: V2Data,
    epochs: int = 12,
    batch_size: int = 32,
    lr: float = 1e-5,
    weight_decay: float = 1e-4,
    seed: int = 0,
    dim: int = 128,
    progress: bool = True,
) -> V2Result:
    """PCA start on all training windows, then the log-ratio loss; the epoch with the best validation Pearson wins.

    The learning rate is small on purpose: the map has 6 million weights and a few thousand windows; at
    1e-3 it forgets its principal components and validation falls from -0.90 to -0.85.
    """
    torch.manual_seed(seed)
    model = WindowHistEncoderNet(dim=dim)
    sets = [data.splits["train"], *data.extra]
    model.init_pca(torch.cat([s.feats for s in sets]))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    best = (evaluate_windows(model, data.splits["valid"], data.window_size).pearson, 0)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    history: list[dict[str, float]] = [{"epoch": 0, "valid_pearson": best[0]}]
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        model.train()
        losses = []
        batches = [
            (s, p)
            for s in sets
            for p in np.array_split(rng.permutation(len(s.windows)), max(1, len(s.windows) // batch_size))
        ]
        order = rng.permutation(len(batches))
        for j in tqdm(order, desc=f"encoder v2 epoch {epoch + 1}/{epochs}", disable=not progress, leave=False):
            s, pick = batches[int(j)]
            if len(pick) < 3:
                continue
            loss = log_ratio_loss(
                model(s.feats[torch.from_numpy(pick)]), torch.from_numpy(s.sim[pick][:, pick]).float()
            )
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
        valid = evaluate_windows(model, data.splits["valid"], data.window_size)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "valid_pearson": valid.pearson}
        history.append(row)
        log.info("encoder v2 epoch %d: %s", epoch + 1, row)
        if valid.pearson < best[0]:
            best = (valid.pearson, epoch + 1)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    metrics = {
        "best_epoch": best[1],
        "valid": evaluate_windows(model, data.splits["valid"], data.window_size).as_dict(),
        "test": evaluate_windows(model, data.splits["test"], data.window_size).as_dict(),
    }
    return V2Result(model, history, int(best[1]), metrics)


def export_v2(
    model: WindowHistEncoderNet, out_dir: str | Path, metrics: dict[str, Any], training_data: str
) -> ModelCard:
    """Export ``encoder.onnx`` (input ``window_hist``, checked against PyTorch) and write its card."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    cfg = model.config
    example = torch.rand(3, *model.in_shape)
    example = example / example.sum(dim=1, keepdim=True)
    worst = export_onnx(model, (example,), out / ENCODER_FILE, ["window_hist"], ["embedding"])
    card = ModelCard(
        name="satwatch-window-encoder",
        kind="encoder",
        version=VERSION,
        file=ENCODER_FILE,
        sha256="",
        input=TensorSpec(name="window_hist", shape=["batch", *model.in_shape]),
        outputs=[TensorSpec(name="embedding", shape=["batch", cfg["dim"]])],
        profile="COMS-1",
        window_embedding="map_of_mean",
        normalisation=Normalisation(
            channels=list(CHANNELS),
            height=300,
            width=375,
            resample="box",
            scale=[1.0] * cfg["channels"],
            offset=[0.0] * cfg["channels"],
            front_end="grid_hist",
            grid=GT_GRID,
            bins=GT_BINS,
        ),
        training_data=training_data,
        metrics={
            **metrics,
            "export_max_abs_diff": worst,
            "window_embedding": "learned linear map of the square roots of the window's mean per-cell histograms",
        },
        thresholds={},
        created=datetime.now(UTC),
    )
    return finish_card(card, out / ENCODER_FILE, out / ENCODER_CARD)
