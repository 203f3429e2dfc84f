"""Box-filter downsizing of uint8 frame planes: the cell mean and the cell pixel spread in one pass.

Pillow's BOX resampling gives the same weights, but it resizes one float plane at a time, and the
autoencoder's input needs eight planes a frame (four means, four means of squares): that took about
3 ms a frame, as long as the model itself. Here the weights are read off Pillow once per size (so the
two agree), and a compiled loop applies them to every plane of a batch, rows first.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
from PIL import Image


@lru_cache(maxsize=16)
def box_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's BOX weights along one axis as taps: input indices (size_out, T) int64 and weights float64.

    Read off by resizing the identity, so output k of a row is sum_t row[index[k, t]] * weight[k, t];
    unused taps carry weight 0 on index 0.
    """
    eye = np.eye(size_in, dtype=np.float32)
    # Resizing only the width of an identity image: entry (j, k) is input j's weight in output k.
    dense = np.asarray(Image.fromarray(eye, mode="F").resize((size_out, size_in), Image.Resampling.BOX)).T
    taps = int((dense != 0).sum(axis=1).max())
    index = np.zeros((size_out, taps), dtype=np.int64)
    weight = np.zeros((size_out, taps), dtype=np.float64)
    for k in range(size_out):
        (nonzero,) = np.nonzero(dense[k])
        index[k, : len(nonzero)] = nonzero
        weight[k, : len(nonzero)] = dense[k, nonzero]
    return index, weight


@numba.njit(cache=True, nogil=True)
def _box_moments(
    planes: np.ndarray,
    row_index: np.ndarray,
    row_weight: np.ndarray,
    col_index: np.ndarray,
    col_weight: np.ndarray,
    mean: np.ndarray,
    spread: np.ndarray,
    want_spread: bool,
) -> None:
    n, c, _, width = planes.shape
    out_h, out_w = mean.shape[2], mean.shape[3]
    rows = np.empty((out_h, width), dtype=np.float64)
    rows_sq = np.empty((out_h, width), dtype=np.float64)
    for i in range(n):
        for j in range(c):
            # Rows first: each output row is a weighted sum of whole input rows, which vectorises. Sums
            # stay in double so that the spread does not cancel to noise in flat areas.
            rows[:] = 0.0
            rows_sq[:] = 0.0
            for y in range(out_h):
                for t in range(row_index.shape[1]):
                    w = row_weight[y, t]
                    src = planes[i, j, row_index[y, t]]
                    for x in range(width):
                        v = float(src[x])
                        rows[y, x] += v * w
                        rows_sq[y, x] += v * v * w
            for y in range(out_h):
                for x in range(out_w):
                    s = 0.0
                    s2 = 0.0
                    for t in range(col_index.shape[1]):
                        w = col_weight[x, t]
                        s += rows[y, col_index[x, t]] * w
                        s2 += rows_sq[y, col_index[x, t]] * w
                    mean[i, j, y, x] = s
                    if want_spread:
                        spread[i, j, y, x] = np.sqrt(max(s2 - s * s, 0.0))


def box_moments(
    frames: np.ndarray, height: int, width: int, spread: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cell means and pixel standard deviations of (N,C,H,W) uint8 frames box-resized to ``height`` x ``width``.

    Returns float32 (N,C,height,width) means and, with ``spread``, standard deviations (else None).
    """
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(f"expected (N,C,H,W) uint8 frames, got {frames.dtype} {frames.shape}")
    n, c, h, w = frames.shape
    row_index, row_weight = box_taps(h, height)
    col_index, col_weight = box_taps(w, width)
    mean = np.empty((n, c, height, width), dtype=np.float32)
    std = np.empty_like(mean) if spread else np.empty((0, 0, 0, 0), dtype=np.float32)
    _box_moments(np.ascontiguousarray(frames), row_index, row_weight, col_index, col_weight, mean, std, spread)
    return mean, (std if spread else None)
