"""Grey levels and bins exactly as the study's reference computes them (double-precision grey, float32 bins)."""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

from satwatch.services.metric.spec import GREY_WEIGHTS

# ---------------------------------------------------------------------------------------------------
# Grey conversion and binning


def grey_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """The reference's grey plane: ``0.2989 R + 0.5870 G + 0.1140 B`` in double, stored as float32.

    ``rgb`` is (H, W, 3) uint8. Summed left to right exactly as the reference's expression is evaluated.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {rgb.shape}")
    r, g, b = (rgb[:, :, k] for k in range(3))
    if np.array_equal(r, g) and np.array_equal(g, b):
        # KMA PNGs are grey stored as RGB: one 256-entry table gives the same values far faster.
        return _grey_table()[r]
    wr, wg, wb = GREY_WEIGHTS
    return ((wr * r.astype(np.float64) + wg * g) + wb * b).astype(np.float32)


@lru_cache(maxsize=1)
def _grey_table() -> np.ndarray:
    v = np.arange(256, dtype=np.float64)
    wr, wg, wb = GREY_WEIGHTS
    return ((wr * v + wg * v) + wb * v).astype(np.float32)


def bin_values(grey: np.ndarray, bins: int) -> np.ndarray:
    """Bin index ``floor(v / 255 * bins)`` computed in float32, as uint8 of the same shape.

    uint8 input is taken as grey values themselves (not as R = G = B). Values are clipped to 0..bins so
    out-of-range float input cannot index past the histogram.
    """
    if grey.dtype == np.uint8:
        return _uint8_bin_table(bins)[grey]
    v = np.asarray(grey, dtype=np.float32)
    q = np.floor((v / np.float32(255.0)) * np.float32(bins))
    return np.clip(q, 0, bins).astype(np.uint8)


def rgb_bins(rgb: np.ndarray, bins: int) -> np.ndarray:
    """``bin_values(grey_from_rgb(rgb), bins)`` in one compiled pass, as uint8 (H, W).

    Real COMS frames are grey stored as RGB except for about 1.3% of pixels (coastlines, the grid, the title
    text): grey pixels take a 256-entry table, coloured ones the reference's arithmetic (grey in double, stored
    as float32, binned in float32). Twenty times faster than the numpy expression on a 1500 x 1300 frame.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {rgb.shape}")
    wr, wg, wb = GREY_WEIGHTS
    return _rgb_bins(np.ascontiguousarray(rgb, dtype=np.uint8), _grey_rgb_bin_table(bins), bins, wr, wg, wb)


@numba.njit(cache=True, nogil=True)
def _rgb_bins(
    rgb: np.ndarray, lut: np.ndarray, bins: int, wr: float, wg: float, wb: float
) -> np.ndarray:  # pragma: no cover - compiled
    h, w = rgb.shape[0], rgb.shape[1]
    out = np.empty((h, w), dtype=np.uint8)
    f255 = np.float32(255.0)
    fbins = np.float32(bins)
    for i in range(h):
        for j in range(w):
            r, g, b = rgb[i, j, 0], rgb[i, j, 1], rgb[i, j, 2]
            if r == g and g == b:
                out[i, j] = lut[r]
            else:
                # (wr*r + wg*g) + wb*b in double, as the reference's expression; stored as float32.
                v = np.float32((wr * np.float64(r) + wg * np.float64(g)) + wb * np.float64(b))
                q = np.floor((v / f255) * fbins)  # float32 throughout
                out[i, j] = np.uint8(min(max(q, np.float32(0.0)), fbins))
    return out


@lru_cache(maxsize=16)
def _uint8_bin_table(bins: int) -> np.ndarray:
    v = np.arange(256, dtype=np.float32)
    return np.clip(np.floor((v / np.float32(255.0)) * np.float32(bins)), 0, bins).astype(np.uint8)


@lru_cache(maxsize=16)
def _grey_rgb_bin_table(bins: int) -> np.ndarray:
    """Bin of the reference grey of (v, v, v) for every v: KMA's grey-as-RGB pixels in one lookup."""
    return bin_values(_grey_table(), bins)
