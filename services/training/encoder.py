"""Training of the frame encoder with the log-ratio loss on ground-truth window similarities.

Protocol: frames are split 20:20:60 (train/valid/test) into contiguous time blocks; windows of 20 frames
lie wholly inside one block. Each step embeds every frame of a batch of training windows, averages them
per window and applies the log-ratio loss (Kim et al., CVPR 2019) to every (anchor, x, y) triplet of
distinct windows in the batch against the precomputed ground-truth similarity matrix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.models.embedding import ENCODER_CARD, ENCODER_FILE
from satwatch.services.models.modelcard import ModelCard, Normalisation, TensorSpec
from satwatch.services.training.checkpoint import TrainState, load_checkpoint, save_checkpoint
from satwatch.services.training.data import FrameSet, block_windows, split_blocks
from satwatch.services.training.export import export_onnx, finish_card
from satwatch.services.training.metrics import RetrievalReport, pairwise_distances, retrieval_report
from satwatch.services.training.models import FrameEncoderNet
from satwatch.services.training.truth import window_similarities

log = logging.getLogger(__name__)

EPS_SIM = 1e-6


def log_ratio_loss(emb: torch.Tensor, sim: torch.Tensor, eps: float = EPS_SIM) -> torch.Tensor:
    """Dense log-ratio loss over every triplet (a, i, j) of distinct rows of ``emb`` (B, D).

    Per triplet: ``(log(d_ai / d_aj) - log((1 - s_ai + eps) / (1 - s_aj + eps)))**2``; ``sim`` (B, B) holds
    ground-truth similarities. A similarity of 1 and a zero distance stay finite: distances are floored at
    ``sqrt(1e-12)`` and similarities clipped to at most 1.
    """
    b = emb.shape[0]
    if b < 3:
        raise ValueError("the log-ratio loss needs at least 3 windows per batch")
    diff = emb[:, None, :] - emb[None, :, :]
    log_d = 0.5 * torch.log((diff * diff).sum(-1) + 1e-12)
    log_s = torch.log(1.0 - sim.clamp(max=1.0) + eps)
    gap = log_d - log_s.to(log_d.dtype)
    per = (gap[:, :, None] - gap[:, None, :]) ** 2
    eye = torch.eye(b, dtype=torch.bool, device=emb.device)
    # (a, i, j) with a, i, j distinct; i < j counts each unordered pair once.
    valid = ~eye[:, :, None] & ~eye[:, None, :] & torch.triu(~eye, diagonal=1)[None, :, :]
    return per[valid].mean()


def cdf_features(data: np.ndarray, model: FrameEncoderNet, chunk: int = 8, progress: bool = False) -> torch.Tensor:
    """The encoder's fixed front end applied to (N,4,H,W) uint8 frames, in chunks to bound memory."""
    out = []
    with torch.no_grad():
        for s in tqdm(range(0, len(data), chunk), desc="front end", disable=None if progress else True):
            out.append(model.front(torch.from_numpy(data[s : s + chunk]).float()))
    return torch.cat(out)


@dataclass
class EncoderSplit:
    windows: np.ndarray
    sim: np.ndarray


@dataclass
class EncoderData:
    frames: FrameSet
    feats: torch.Tensor
    splits: dict[str, EncoderSplit]
    window_size: int
    stride: int


def prepare_encoder_data(
    frames: FrameSet, window_size: int = 20, stride: int = 4, train_stride: int = 1, progress: bool = True
) -> EncoderData:
    """Split frames 20:20:60 by time, build windows per block and their ground-truth similarities."""
    blocks = split_blocks(len(frames))
    splits = {}
    for name, block in zip(("train", "valid", "test"), blocks, strict=True):
        wins = block_windows(frames.times, block, window_size, train_stride if name == "train" else stride)
        if len(wins) < 3:
            raise ValueError(
                f"the {name} block ({len(block)} frames) holds {len(wins)} windows of {window_size} frames; "
                "use a longer archive"
            )
        splits[name] = EncoderSplit(wins, window_similarities(frames.data, wins, progress))
    feats = cdf_features(frames.data, FrameEncoderNet(), progress=progress)
    return EncoderData(frames, feats, splits, window_size, stride)


def window_embeddings(model: FrameEncoderNet, feats: torch.Tensor, windows: np.ndarray) -> torch.Tensor:
    """Embed the frames the windows use (once each) and average per window."""
    idx, inverse = np.unique(windows, return_inverse=True)
    frame_emb = model.body(feats[torch.from_numpy(idx)])
    per = frame_emb[torch.from_numpy(inverse.reshape(windows.shape))]
    return per.mean(dim=1)


def evaluate_split(model: FrameEncoderNet, data: EncoderData, split: str, k: int = 10) -> RetrievalReport:
    """Correlations and top-k retrieval on one split; windows overlapping the query are not candidates."""
    s = data.splits[split]
    model.eval()
    with torch.no_grad():
        emb = window_embeddings(model, data.feats, s.windows).numpy()
    starts = s.windows[:, 0]
    allowed = np.abs(starts[:, None] - starts[None, :]) >= data.window_size
    return retrieval_report(s.sim, pairwise_distances(emb), k=k, allowed=allowed)


ModelT = TypeVar("ModelT", bound=nn.Module)


@dataclass
class TrainResult(Generic[ModelT]):
    """A training run's best model (the encoder's or the autoencoder's), its history and metrics."""

    model: ModelT
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    metrics: dict[str, Any] = field(default_factory=dict)


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def train_encoder(
    data: EncoderData,
    out_dir: str | Path,
    epochs: int = 40,
    batch_size: int = 32,
    lr: float = 1e-4,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str = "cpu",
    resume: str | Path | None = None,
    cell_dim: int = 8,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult[FrameEncoderNet]:
    """Train with AdamW and gradient clipping 1.0; keep the epoch with the best validation Pearson.

    A checkpoint (model, optimiser, RNG, history) is written after every epoch to ``out_dir/encoder.ckpt``;
    ``resume`` continues from one.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _seed_all(seed)
    model = FrameEncoderNet(cell_dim=cell_dim).to(device)
    train = data.splits["train"]
    model.body.init_pca(data.feats[torch.from_numpy(np.unique(train.windows))].to(device))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    history: list[dict[str, float]] = []
    best = (evaluate_split(model, data, "valid").pearson, 0)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    start_epoch = 0
    if resume is not None:
        resumed = load_checkpoint(resume, model, opt, sched, device)
        history, best, best_state, start_epoch = resumed.history, resumed.best, resumed.best_state, resumed.epoch
    feats = data.feats.to(device)
    sim_train = torch.from_numpy(train.sim).float().to(device)
    rng = np.random.default_rng(seed + start_epoch)
    for epoch in range(start_epoch, epochs):
        model.train()
        order = rng.permutation(len(train.windows))
        steps = max(1, len(order) // batch_size)
        losses = []
        bar = tqdm(
            range(steps), desc=f"encoder epoch {epoch + 1}/{epochs}", disable=None if progress else True, leave=False
        )
        for step in bar:
            pick = order[step * batch_size : (step + 1) * batch_size]
            if len(pick) < 3:
                continue
            emb = window_embeddings(model, feats, train.windows[pick])
            loss = log_ratio_loss(emb, sim_train[pick][:, pick])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        sched.step()
        valid = evaluate_split(model, data, "valid")
        with torch.no_grad():
            vs = data.splits["valid"]
            vemb = window_embeddings(model, feats, vs.windows)
            vloss = float(log_ratio_loss(vemb, torch.from_numpy(vs.sim).float().to(device)))
        row = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "valid_loss": vloss,
            "valid_pearson": valid.pearson,
            "valid_topk": valid.topk_mean_similarity,
        }
        history.append(row)
        if valid.pearson < best[0]:
            best = (valid.pearson, epoch + 1)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch:
            on_epoch(row)
        log.info("encoder epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in row.items()})
        save_checkpoint(out / "encoder.ckpt", model, opt, sched, TrainState(history, best, best_state, epoch + 1))
    model.load_state_dict(best_state)
    model.eval()
    result = TrainResult(model=model, history=history, best_epoch=int(best[1]))
    result.metrics = {
        "best_epoch": result.best_epoch,
        "valid": evaluate_split(model, data, "valid").as_dict(),
        "test": evaluate_split(model, data, "test").as_dict(),
    }
    return result


def export_encoder(
    model: FrameEncoderNet,
    out_dir: str | Path,
    metrics: dict[str, Any],
    training_data: str,
    version: str = "1.2.0",
) -> ModelCard:
    """Export ``encoder.onnx`` (checked against PyTorch) and write ``encoder.card.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    model = model.cpu().eval()
    # Only the learned body goes into the graph when the front end is the metric's own CDFs: the runtime
    # computes those from the ground-truth signature in ~1.5 ms instead of ~30 ms of dense ops in the graph.
    cdf_front = cfg.get("features", "cdf") == "cdf"
    pixels = torch.randint(0, 256, (3, cfg["channels"], cfg["height"], cfg["width"])).float()
    if cdf_front:
        example = model.front(pixels)
        worst = export_onnx(model.body, (example,), out / ENCODER_FILE, ["cdf"], ["embedding"])
        input_spec = TensorSpec(name="cdf", shape=["batch", *example.shape[1:]])
    else:
        worst = export_onnx(model, (pixels,), out / ENCODER_FILE, ["frames"], ["embedding"])
        input_spec = TensorSpec(name="frames", shape=["batch", cfg["channels"], cfg["height"], cfg["width"]])
    card = ModelCard(
        name="satwatch-frame-encoder",
        kind="encoder",
        version=version,
        file=ENCODER_FILE,
        sha256="",
        input=input_spec,
        outputs=[TensorSpec(name="embedding", shape=["batch", cfg["dim"]])],
        profile="COMS-1",
        normalisation=Normalisation(
            channels=list(CHANNELS),
            height=cfg["height"],
            width=cfg["width"],
            resample="box",
            scale=[1.0] * cfg["channels"],
            offset=[0.0] * cfg["channels"],
            front_end="grid_cdf" if cdf_front else "pixels",
        ),
        training_data=training_data,
        metrics={**metrics, "export_max_abs_diff": worst, "window_embedding": "mean of the frames' embeddings"},
        thresholds={},
        created=datetime.now(UTC),
    )
    return finish_card(card, out / ENCODER_FILE, out / ENCODER_CARD)
