"""Encoder v2: a learned map of a window's mean per-cell histograms, trained with the log-ratio loss.

The window embedding is no longer a mean of frame embeddings (DESIGN.md section 4 asks only that a new
frame cost O(1)). Per frame the runtime keeps the normalised histogram of every ground-truth cell
(numpy, exact, from the signature the re-rank keeps anyway). v2.0 maps the square roots of their running
mean over the window to 128 numbers (the shipped encoder); v2.1 (``parts`` > 1) takes the means of the
window's consecutive parts (2: the first and the last 10 frames), so the map sees the order of the frames
the metric compares one by one, and maps each part's square roots with one shared linear map. Training is v1's
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
from satwatch.services.models.embedding import ENCODER_CARD, ENCODER_FILE, hist_from_signature, part_bounds
from satwatch.services.models.modelcard import ModelCard, Normalisation, TensorSpec
from satwatch.services.training.data import FrameSet, block_windows, split_blocks
from satwatch.services.training.encoder import log_ratio_loss
from satwatch.services.training.export import export_onnx, finish_card
from satwatch.services.training.metrics import RetrievalReport, pairwise_distances, retrieval_report
from satwatch.services.training.models import GT_BINS, GT_GRID, WindowHistEncoderNet
from satwatch.services.training.truth import frame_signatures, window_similarities

log = logging.getLogger(__name__)

VERSION = "2.1.0"  # v2.0 (one part, the window mean) is still "2.0.0"
#: Encoder v2.2: v2.1's parts and linear map plus a small convolutional correction (``WindowPartsConvEncoderNet``).
VERSION_CONV = "2.2.0"
#: Encoder v2.1: the window in this many consecutive parts, each part's mean histograms mapped alike. Four
#: parts track the metric better uncompressed, but squeezed to 256 numbers two keep more (BENCHMARKS.md).
PARTS = 2


class WindowPartsEncoderNet(nn.Module):
    """Encoder v2.1: the mean per-cell histograms of a window's ``parts`` consecutive parts -> (N, dim).

    The study's metric compares two windows frame by frame in time order; one window mean cannot see the
    order (square roots of the window mean track the metric at -0.948 on the simulated test block), while
    the square roots of 2 part means, unlearned and uncompressed, reach -0.978 there (-0.989 on held-out
    texture-scene windows; 4 parts -0.988 and -0.994). Every
    part goes through one shared linear map to ``dim // parts`` numbers (started from the principal
    components of training parts) and the results are concatenated, so the squared distance is a sum over
    parts, as the metric is a sum over frames. Each part's mean is a running sum: a new frame is O(1).
    """

    def __init__(
        self, parts: int = PARTS, channels: int = 4, grid: int = GT_GRID, bins: int = GT_BINS, dim: int = 256
    ) -> None:
        super().__init__()
        if dim % parts:
            raise ValueError(f"embedding size {dim} is not a multiple of {parts} parts")
        self.parts = parts
        self.in_shape: tuple[int, ...] = (parts, channels * (bins + 1), grid, grid)
        self.proj = nn.Linear(channels * (bins + 1) * grid * grid, dim // parts)
        self.config = {"channels": channels, "grid": grid, "bins": bins, "dim": dim, "parts": parts}

    def roots(self, hist: torch.Tensor) -> torch.Tensor:
        """Square roots of the part-mean histograms, (N, parts, C*(B+1)*n*n) float32."""
        return torch.sqrt(hist.float().clamp(min=0.0)).flatten(2)

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        return self.proj(self.roots(hist)).reshape(-1, self.parts * self.proj.out_features)

    @torch.no_grad()
    def init_pca(self, hist: torch.Tensor, rows: int = 4000, seed: int = 0) -> None:
        """Set the shared map to the leading principal components of (at most ``rows``) training parts."""
        x = self.roots(hist).flatten(0, 1)
        if len(x) > rows:
            x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:rows]]
        mu = x.mean(0)
        d = min(self.proj.out_features, len(x) - 1)
        _, _, v = torch.svd_lowrank(x - mu, q=d + 8, niter=4)
        weight = torch.zeros_like(self.proj.weight)
        weight[:d] = v[:, :d].T
        self.proj.weight.copy_(weight)
        self.proj.bias.copy_(-(weight @ mu))


class PartConvNet(nn.Module):
    """The convolutional branch for one part: square-root histograms (N, C*(B+1), n, n) -> (N, out).

    1x1 convolutions mix the 84 bins of each cell (one set of weights for all 576 cells), two strided 3x3
    convolutions bring the 24 x 24 grid to 6 x 6, and a linear head reads that coarse map. About 0.4 M
    weights against the linear map's 6.2 M, with a spatial prior the linear map lacks.
    """

    def __init__(self, in_channels: int, out: int, width: int = 64, mixers: int = 1, grid: int = GT_GRID) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 1), nn.GELU()]
        for _ in range(mixers - 1):
            layers += [nn.Conv2d(width, width, 1), nn.GELU()]
        layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.GELU()]
        layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.GELU()]
        self.body = nn.Sequential(*layers)
        coarse = ((grid + 1) // 2 + 1) // 2  # two stride-2 convolutions: 24 -> 12 -> 6
        self.head = nn.Linear(width * coarse * coarse, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))


class WindowPartsConvEncoderNet(WindowPartsEncoderNet):
    """Encoder v2.2: v2.1 (one shared linear map of each part's square-root mean histograms) plus a shared
    convolutional branch per part whose output is added to the linear map's.

    The linear map starts from principal components and learns slowly (it has 6.2 M weights and a few
    thousand training windows); the convolutional branch starts at zero, so training begins at v2.1's PCA
    start and the branch learns what a linear squeeze of the 48,384 numbers misses. Input and output are
    v2.1's, so the runtime reads it as any ``map_of_part_means`` encoder.
    """

    def __init__(
        self,
        parts: int = PARTS,
        channels: int = 4,
        grid: int = GT_GRID,
        bins: int = GT_BINS,
        dim: int = 256,
        width: int = 64,
        mixers: int = 1,
    ) -> None:
        super().__init__(parts=parts, channels=channels, grid=grid, bins=bins, dim=dim)
        self.conv = PartConvNet(channels * (bins + 1), dim // parts, width=width, mixers=mixers, grid=grid)
        nn.init.zeros_(self.conv.head.weight)
        nn.init.zeros_(self.conv.head.bias)
        self.config = {**self.config, "width": width, "mixers": mixers}

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        roots = torch.sqrt(hist.float().clamp(min=0.0))
        x = roots.reshape(-1, *self.in_shape[1:])  # (N * parts, C*(B+1), n, n)
        out = self.proj(x.flatten(1)) + self.conv(x)
        return out.reshape(-1, self.parts * self.proj.out_features)


EncoderNet = WindowHistEncoderNet | WindowPartsEncoderNet


def pearson_loss(emb: torch.Tensor, sim: torch.Tensor) -> torch.Tensor:
    """1 - Pearson(embedding distance, 1 - ground truth) over the batch's pairs: the bar's own measure.

    The log-ratio loss asks each anchor's distance ratios to match; this asks distances to be a linear
    function of the metric across all pairs at once, which is what the index's Pearson bar reads.
    """
    b = emb.shape[0]
    diff = emb[:, None, :] - emb[None, :, :]
    iu = torch.triu_indices(b, b, 1, device=emb.device)
    d = torch.sqrt((diff * diff).sum(-1) + 1e-12)[iu[0], iu[1]]
    t = (1.0 - sim.to(d.dtype))[iu[0], iu[1]]
    d, t = d - d.mean(), t - t.mean()
    return 1.0 - (d * t).sum() / torch.sqrt((d * d).sum() * (t * t).sum() + 1e-12)


def dihedral(feats: torch.Tensor, k: int) -> torch.Tensor:
    """The windows' grid cells (the last two axes) turned by ``k % 4`` quarter turns, mirrored when ``k >= 4``.

    The metric compares cell with cell, so moving every cell of both windows alike leaves their ground-truth
    similarity exactly as it was: eight windows' worth of training data for the price of one.
    """
    x = torch.rot90(feats, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def frame_histograms(sigs: dict[int, FrameSignature], n_frames: int) -> np.ndarray:
    """(n_frames, C*(B+1), n, n) float32 per-cell normalised histograms; frames without a signature stay 0."""
    first = next(iter(sigs.values()))
    out = np.zeros((n_frames, first.channels * (first.spec.bins + 1), first.spec.n, first.spec.n), np.float32)
    for i, sig in sigs.items():
        out[i] = hist_from_signature(sig)
    return out


def window_features(hists: np.ndarray, windows: np.ndarray | Sequence[np.ndarray], parts: int = 1) -> torch.Tensor:
    """The graph's input for each window (M, size) of frame indices: its mean histograms (M, C*(B+1), n, n),
    or with ``parts`` > 1 the mean histograms of its consecutive parts (M, parts, C*(B+1), n, n)."""
    if parts == 1:
        return torch.from_numpy(np.stack([hists[w].mean(axis=0) for w in windows]))
    # float16 keeps a few thousand training windows of 4 x 48,384 numbers in memory (the graph reads float32).
    out = np.empty((len(windows), parts, *hists.shape[1:]), np.float16)
    for i, w in enumerate(windows):
        for j, (a, b) in enumerate(part_bounds(len(w), parts)):
            out[i, j] = hists[w[a:b]].mean(axis=0, dtype=np.float32)
    return torch.from_numpy(out)


@dataclass
class WindowSet:
    """Windows of one split or extra archive: their mean histograms and ground-truth similarities (``feats``
    and ``sim`` may also hold part-filled windows after the full ``windows``)."""

    windows: np.ndarray
    feats: torch.Tensor
    sim: np.ndarray


def _window_set(
    frames: FrameSet, windows: np.ndarray, progress: bool, parts: int, part_filled: float = 0.0, seed: int = 0
) -> WindowSet:
    """Features and similarities of ``windows``; with ``part_filled`` > 0 that share of them also joins as a
    part-filled copy (its latest 4-19 frames), after the full ones, as the detector sees a stream's first
    hours and gaps. ``windows`` keeps the full ones only."""
    sigs = frame_signatures(frames.data, windows, progress)
    hists = frame_histograms(sigs, len(frames))
    rng = np.random.default_rng(seed)
    size = windows.shape[1]
    shortest = min(4, size - 1)  # 20 frames: 4..19; the tests' windows of 3: 2
    cut = [w[-int(rng.integers(shortest, size)) :] for w in windows if part_filled and rng.random() < part_filled]
    every: list[np.ndarray] = [*windows, *cut]
    return WindowSet(windows, window_features(hists, every, parts), window_similarities(frames.data, every, sigs=sigs))


@dataclass
class V2Data:
    splits: dict[str, WindowSet]
    extra: list[WindowSet]
    window_size: int
    #: Windows of other archives that join model selection (not training): the mean of their Pearson and
    #: the valid block's decides the epoch kept.
    valid_extra: list[WindowSet] = field(default_factory=list)


def prepare_v2_data(
    frames: FrameSet,
    extra: Sequence[FrameSet] = (),
    window_size: int = 20,
    stride: int = 4,
    extra_stride: int = 2,
    progress: bool = True,
    parts: int = 1,
    part_filled: float = 0.0,
    valid_extra: Sequence[FrameSet] = (),
) -> V2Data:
    """Split ``frames`` 20:20:60 by time (train windows at stride 1) and cut windows from ``extra`` archives.

    ``part_filled``: the share of training windows also added part-filled (see ``_window_set``).
    ``valid_extra``: archives whose windows (every ``extra_stride``-th start) join model selection only.
    """
    splits = {}
    for name, block in zip(("train", "valid", "test"), split_blocks(len(frames)), strict=True):
        wins = block_windows(frames.times, block, window_size, 1 if name == "train" else stride)
        if len(wins) < 3:
            raise ValueError(
                f"the {name} block holds {len(wins)} windows of {window_size} frames; use a longer archive"
            )
        splits[name] = _window_set(frames, wins, progress, parts, part_filled if name == "train" else 0.0)
    more = []
    for k, fs in enumerate(extra):
        wins = block_windows(fs.times, range(len(fs)), window_size, extra_stride)
        if len(wins) >= 3:
            more.append(_window_set(fs, wins, progress, parts, part_filled, seed=k + 1))
    checks = []
    for fs in valid_extra:
        wins = block_windows(fs.times, range(len(fs)), window_size, extra_stride)
        if len(wins) >= 3:
            checks.append(_window_set(fs, wins, progress, parts))
    return V2Data(splits, more, window_size, checks)


def evaluate_windows(model: EncoderNet, ws: WindowSet, window_size: int = 20, k: int = 10) -> RetrievalReport:
    """Correlations and top-k retrieval over the set's full windows; windows overlapping the query are not
    candidates (nor pairs in the correlations)."""
    model.eval()
    n = len(ws.windows)
    with torch.no_grad():
        emb = torch.cat([model(ws.feats[i : min(i + 64, n)]) for i in range(0, n, 64)]).numpy()
    starts = ws.windows[:, 0]
    allowed = np.abs(starts[:, None] - starts[None, :]) >= window_size
    return retrieval_report(ws.sim[:n, :n], pairwise_distances(emb), k=k, allowed=allowed)


@dataclass
class V2Result:
    model: EncoderNet
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConvRecipe:
    """How v2.2 (``arch="conv"``) trains beyond v2.1's options; the defaults are the shipped run's."""

    width: int = 64
    mixers: int = 1
    #: Learning rate of the convolutional branch (the linear map keeps ``lr``).
    conv_lr: float = 3e-4
    #: Loss = logratio_weight * log-ratio loss + pearson_weight * (1 - in-batch Pearson).
    logratio_weight: float = 0.0
    pearson_weight: float = 1.0
    #: Turn and mirror each batch's grid alike (``dihedral``).
    augment: bool = True


def _selection_score(model: EncoderNet, data: V2Data) -> float:
    """Validation Pearson (disjoint pairs) of the valid block, averaged with that of any ``valid_extra`` set."""
    scores = [evaluate_windows(model, data.splits["valid"], data.window_size).pearson]
    if data.valid_extra:
        extra = [evaluate_windows(model, s, data.window_size).pearson for s in data.valid_extra]
        scores.append(float(np.mean(extra)))
    return float(np.mean(scores))


def _new_model(feats: torch.Tensor, dim: int, arch: str, recipe: ConvRecipe) -> EncoderNet:
    if arch == "conv":
        if feats.ndim != 5:
            raise ValueError("the convolutional encoder reads (M, parts, C*(B+1), n, n) windows (see train_v2)")
        return WindowPartsConvEncoderNet(parts=feats.shape[1], dim=dim, width=recipe.width, mixers=recipe.mixers)
    if arch != "linear":
        raise ValueError(f"unknown encoder v2 architecture {arch!r} (linear or conv)")
    return WindowPartsEncoderNet(parts=feats.shape[1], dim=dim) if feats.ndim == 5 else WindowHistEncoderNet(dim=dim)


def train_v2(
    data: V2Data,
    epochs: int = 12,
    batch_size: int = 32,
    lr: float = 1e-5,
    weight_decay: float = 1e-4,
    seed: int = 0,
    dim: int = 128,
    progress: bool = True,
    arch: str = "linear",
    recipe: ConvRecipe | None = None,
) -> V2Result:
    """PCA start on the training windows, then the loss; the epoch with the best validation Pearson wins.

    The learning rate of the linear map is small on purpose: it has 6 million weights and a few thousand
    windows; at 1e-3 it forgets its principal components and validation falls from -0.90 to -0.85.
    ``arch="conv"`` (v2.2) adds the convolutional branch and trains by ``recipe``; "linear" is v2.0/v2.1
    (log-ratio loss, no augmentation).
    """
    torch.manual_seed(seed)
    recipe = recipe or ConvRecipe()
    conv = arch == "conv"
    if conv and data.splits["train"].feats.ndim == 4:
        # one part (the window mean): the convolutional encoder reads it as a window of one part
        for ws in [*data.splits.values(), *data.extra, *data.valid_extra]:
            ws.feats = ws.feats.unsqueeze(1)
    feats = data.splits["train"].feats
    model = _new_model(feats, dim, arch, recipe)
    sets = [data.splits["train"], *data.extra]
    if isinstance(model, WindowPartsEncoderNet):
        rng0 = np.random.default_rng(seed)
        total = sum(len(s.feats) for s in sets)
        share = min(1.0, 1000 / total)  # 1,000 windows' parts are plenty for 64 components
        picks = [torch.from_numpy(np.flatnonzero(rng0.random(len(s.feats)) < share)) for s in sets]
        model.init_pca(torch.cat([s.feats[p] for s, p in zip(sets, picks, strict=True)]), seed=seed)
    else:
        model.init_pca(torch.cat([s.feats for s in sets]))
    rng = np.random.default_rng(seed)
    if isinstance(model, WindowPartsConvEncoderNet):
        groups = [
            {"params": model.proj.parameters(), "lr": lr},
            {"params": model.conv.parameters(), "lr": recipe.conv_lr},
        ]
        opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    best = (_selection_score(model, data), 0)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    history: list[dict[str, float]] = [{"epoch": 0, "valid_pearson": best[0]}]
    for epoch in range(epochs):
        model.train()
        losses = []
        batches = [
            (s, p)
            for s in sets
            for p in np.array_split(rng.permutation(len(s.feats)), max(1, len(s.feats) // batch_size))
        ]
        order = rng.permutation(len(batches))
        for j in tqdm(
            order, desc=f"encoder v2 epoch {epoch + 1}/{epochs}", disable=None if progress else True, leave=False
        ):
            s, pick = batches[int(j)]
            if len(pick) < 3:
                continue
            x = s.feats[torch.from_numpy(pick)]
            if conv and recipe.augment:
                x = dihedral(x, int(rng.integers(8)))
            emb = model(x)
            sim = torch.from_numpy(s.sim[pick][:, pick]).float()
            if conv:
                loss = recipe.pearson_weight * pearson_loss(emb, sim)
                if recipe.logratio_weight:
                    loss = loss + recipe.logratio_weight * log_ratio_loss(emb, sim)
            else:
                loss = log_ratio_loss(emb, sim)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
        score = _selection_score(model, data)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "valid_pearson": score}
        history.append(row)
        log.info("encoder v2 epoch %d: %s", epoch + 1, row)
        if score < best[0]:
            best = (score, epoch + 1)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    metrics = {
        "best_epoch": best[1],
        "valid": evaluate_windows(model, data.splits["valid"], data.window_size).as_dict(),
        "test": evaluate_windows(model, data.splits["test"], data.window_size).as_dict(),
    }
    if data.valid_extra:
        metrics["valid_extra"] = [evaluate_windows(model, s, data.window_size).as_dict() for s in data.valid_extra]
    return V2Result(model, history, int(best[1]), metrics)


def export_v2(model: EncoderNet, out_dir: str | Path, metrics: dict[str, Any], training_data: str) -> ModelCard:
    """Export ``encoder.onnx`` (input ``window_hist``, checked against PyTorch) and write its card."""
    # One part (v2.0's window mean, also v2.2 with --parts 1) keeps v2.0's input: (batch, C*(B+1), n, n).
    by_parts = isinstance(model, WindowPartsEncoderNet) and model.parts > 1
    in_shape = model.in_shape if by_parts or not isinstance(model, WindowPartsEncoderNet) else model.in_shape[1:]
    if isinstance(model, WindowPartsConvEncoderNet):
        version = VERSION_CONV
        what = "one learned linear map plus one small convolutional map (added) of the square roots of the mean " + (
            "per-cell histograms of the window"
            if model.parts == 1
            else f"per-cell histograms of each of the window's {model.parts} consecutive parts, concatenated"
        )
    elif isinstance(model, WindowPartsEncoderNet):
        version = VERSION
        what = (
            "one learned linear map of the square roots of the mean per-cell histograms of each of the "
            f"window's {model.parts} consecutive parts, concatenated"
        )
    else:
        version = "2.0.0"
        what = "learned linear map of the square roots of the window's mean per-cell histograms"
    return export_window_hist_encoder(model, tuple(in_shape), by_parts, version, out_dir, metrics, training_data, what)


def export_window_hist_encoder(
    model: nn.Module,
    in_shape: tuple[int, ...],
    by_parts: bool,
    version: str,
    out_dir: str | Path,
    metrics: dict[str, Any],
    training_data: str,
    window_embedding: str,
) -> ModelCard:
    """Export a graph that maps a window's mean per-cell histograms (``in_shape`` without the batch; its parts'
    means when ``by_parts``) to its index vector as ``encoder.onnx`` (checked against PyTorch), with its card:
    the one input and card layout the runtime reads for every v2 and v3 encoder. ``window_embedding`` says in
    words what the graph computes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    cfg: dict[str, Any] = model.config  # type: ignore[assignment]
    example = torch.rand(3, *in_shape)
    example = example / example.sum(dim=-3, keepdim=True)
    worst = export_onnx(model, (example,), out / ENCODER_FILE, ["window_hist"], ["embedding"])
    card = ModelCard(
        name="satwatch-window-encoder",
        kind="encoder",
        version=version,
        file=ENCODER_FILE,
        sha256="",
        input=TensorSpec(name="window_hist", shape=["batch", *in_shape]),
        outputs=[TensorSpec(name="embedding", shape=["batch", cfg["dim"]])],
        profile="COMS-1",
        window_embedding="map_of_part_means" if by_parts else "map_of_mean",
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
        metrics={**metrics, "export_max_abs_diff": worst, "window_embedding": window_embedding},
        thresholds={},
        created=datetime.now(UTC),
    )
    return finish_card(card, out / ENCODER_FILE, out / ENCODER_CARD)
