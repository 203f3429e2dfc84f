"""Ground-truth similarity of windows of a frame set: what the encoder is trained on and evaluated against.

NumPy (and the metric's numba kernels) only, no PyTorch: ``satwatch evaluate`` scores the ONNX encoder against
it without the ``train`` extra, and training (``encoder``, ``encoder_v2``) uses the same functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from satwatch.services.metric.groundtruth import (
    FrameSignature,
    GridSpec,
    frame_signature,
    pairwise_similarity,
    window_signature,
)

#: The ground-truth metric's grid for training and evaluation: 24 x 24 cells, 20 bins, every channel.
GT_SPEC = GridSpec(n=24, bins=20, mode="general")


def frame_signatures(data: np.ndarray, windows: np.ndarray, progress: bool = False) -> dict[int, FrameSignature]:
    """Ground-truth signature of every frame the windows (M, size) use, keyed by frame index."""
    return {
        int(i): frame_signature(data[i], GT_SPEC)
        for i in tqdm(np.unique(windows), desc="ground-truth signatures", disable=None if progress else True)
    }


def window_similarities(
    data: np.ndarray,
    windows: np.ndarray | Sequence[np.ndarray],
    progress: bool = False,
    sigs: dict[int, FrameSignature] | None = None,
) -> np.ndarray:
    """Ground-truth similarity matrix of the windows (M, size), or of windows of any lengths given ``sigs``,
    over frames ``data`` (or their ``sigs``)."""
    if sigs is None:
        sigs = frame_signatures(data, np.concatenate([np.ravel(w) for w in windows]), progress)
    wins = [window_signature([sigs[int(i)] for i in w]) for w in windows]
    return pairwise_similarity(wins)
