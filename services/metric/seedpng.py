"""The seed walk's histogram straight from an RGB PNG's scanlines, for frames with colour in them.

Real COMS frames are grey stored as RGB except for about 1.3% of pixels (yellow coastlines, the dotted
latitude/longitude grid, the title text), spread over nearly every row. :mod:`satwatch.services.frames.pngfast`
unfilters only the red bytes of a grey-as-RGB file, but its first coloured pixel sends the file down a full
RGB unfilter into a whole image, which the metric then converts to bins and walks again. This module does it
in one pass keeping two rows: each scanline is unfiltered pixel by pixel (a pixel whose filtered bytes are
equal and whose left, upper and upper-left neighbours are grey is grey too, since PNG filters act on each byte
with the same byte of those neighbours, so it is unfiltered once for all three channels; any other pixel
channel by channel), binned (a table for grey pixels, the reference's double-then-float32 arithmetic for
coloured ones), and counted into its cell of the seed walk, wrap-around into the next row and zero rows past
the last one included.

The counts equal ``grid_histograms(rgb_bins(decoded), spec)`` for the decoded image exactly
(``tests/services/metric/test_seedpng.py``: every filter type, grey and coloured pixels, the real frames).
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from satwatch.services.frames.pngfast import RGB, read_png_raw, seed_zero_tail

# The grey-as-RGB kernel of pngfast (red bytes only, fused with the same seed walk): faster still for files
# with no colour at all, and it stops at the first coloured pixel.
from satwatch.services.frames.pngfast import _unfilter_red_hist_seed as _grey_rgb_seed_hist


@numba.njit(cache=True, nogil=True, inline="always")
def _predict(ft, a, b, c):  # pragma: no cover - compiled
    """The PNG predictor of filter type ``ft`` from the left (a), upper (b) and upper-left (c) bytes."""
    if ft == 1:
        return a
    if ft == 2:
        return b
    if ft == 3:
        return (a + b) >> 1
    if ft == 4:
        # Paeth without branches (its choices follow the data, so branches would be mispredicted):
        # pa = |p - a| = |b - c|, pb = |p - b| = |a - c|, pc = |p - c| = |a + b - 2c|.
        pa = abs(b - c)
        pb = abs(a - c)
        pc = abs(a + b - c - c)
        bc = b if pb <= pc else c
        return a if (pa <= pb) & (pa <= pc) else bc
    return 0


@numba.njit(cache=True, nogil=True, inline="always")
def _unfilter_bin_row(
    ft: int,
    src: np.ndarray,
    prev: np.ndarray,
    cur: np.ndarray,
    gprev: np.ndarray,
    gcur: np.ndarray,
    out: np.ndarray,
    w: int,
    lut: np.ndarray,
    fbins: np.float32,
    wr: float,
    wg: float,
    wb: float,
) -> None:  # pragma: no cover - compiled
    """Unfilter one RGB scanline ``src`` (filter ``ft``) into ``cur`` given the row above ``prev`` (zeros above
    the first row), and write each pixel's bin to ``out``; ``gprev``/``gcur`` say which pixels are grey."""
    f255 = np.float32(255.0)
    lr = np.int32(0)
    lg = np.int32(0)
    lb = np.int32(0)
    ulr = np.int32(0)
    ulg = np.int32(0)
    ulb = np.int32(0)
    lgrey = True
    ulgrey = True
    for x in range(w):
        i = 3 * x
        s0 = np.int32(src[i])
        s1 = np.int32(src[i + 1])
        s2 = np.int32(src[i + 2])
        ur = np.int32(prev[i])
        ugrey = gprev[x] != 0
        if s0 == s1 and s1 == s2 and lgrey and ugrey and ulgrey:
            v = (s0 + _predict(ft, lr, ur, ulr)) & 255
            cur[i] = v
            cur[i + 1] = v
            cur[i + 2] = v
            lr = v
            lg = v
            lb = v
            ulr = ur
            ulg = ur
            ulb = ur
            gcur[x] = 1
            lgrey = True
            out[x] = lut[v]
        else:
            ug = np.int32(prev[i + 1])
            ub = np.int32(prev[i + 2])
            vr = (s0 + _predict(ft, lr, ur, ulr)) & 255
            vg = (s1 + _predict(ft, lg, ug, ulg)) & 255
            vb = (s2 + _predict(ft, lb, ub, ulb)) & 255
            cur[i] = vr
            cur[i + 1] = vg
            cur[i + 2] = vb
            lr = vr
            lg = vg
            lb = vb
            ulr = ur
            ulg = ug
            ulb = ub
            grey = vr == vg and vg == vb
            gcur[x] = 1 if grey else 0
            lgrey = grey
            if grey:
                out[x] = lut[vr]
            else:
                # (wr*r + wg*g) + wb*b in double, stored as float32, binned in float32: the reference.
                g = np.float32((wr * np.float64(vr) + wg * np.float64(vg)) + wb * np.float64(vb))
                q = np.floor((g / f255) * fbins)
                out[x] = np.uint8(min(max(q, np.float32(0.0)), fbins))
        ulgrey = ugrey


@numba.njit(cache=True, nogil=True)
def _rgb_seed_hist(
    raw: np.ndarray,
    h: int,
    w: int,
    n: int,
    ch: int,
    cw: int,
    lut: np.ndarray,
    bins: int,
    wr: float,
    wg: float,
    wb: float,
    counts: np.ndarray,
) -> bool:  # pragma: no cover - compiled
    """Add the seed walk's bin counts of an 8-bit RGB PNG's filtered scanlines ``raw`` to ``counts``
    (n*n, bins+1); False on an unknown filter type. Needs ``n*cw - w <= w`` (the wrap stays in one row).

    Row by row: unfilter and bin (:func:`_unfilter_bin_row`), then count the row's bins into four partial
    histograms of the current cell row taken in turn (neighbouring pixels, often of one bin and cell, do not
    wait on each other's increments), added to ``counts`` when the cell row is done. Virtual row v of the walk
    (cell row v // ch) reads image row v, then the first ``n*cw - w`` pixels of row v + 1, and zeros past the
    last row."""
    stride = 3 * w + 1
    extra = n * cw - w
    prev = np.zeros(3 * w, dtype=np.uint8)
    cur = np.zeros(3 * w, dtype=np.uint8)
    gprev = np.ones(w, dtype=np.uint8)
    gcur = np.ones(w, dtype=np.uint8)
    rowbins = np.empty(w, dtype=np.uint8)
    colcell = np.empty(w, dtype=np.int64)
    for x in range(w):
        colcell[x] = x // cw
    nb = counts.shape[1]
    part = np.zeros((4, n, nb), dtype=np.int32)
    fbins = np.float32(bins)
    for r in range(h):
        base = r * stride
        ft = raw[base]
        if ft > 4:
            return False
        src = raw[base + 1 : base + stride]
        # The row function is inlined: with the filter type a constant, each copy's predictor folds to one case.
        if ft == 4:
            _unfilter_bin_row(4, src, prev, cur, gprev, gcur, rowbins, w, lut, fbins, wr, wg, wb)
        elif ft == 2:
            _unfilter_bin_row(2, src, prev, cur, gprev, gcur, rowbins, w, lut, fbins, wr, wg, wb)
        elif ft == 1:
            _unfilter_bin_row(1, src, prev, cur, gprev, gcur, rowbins, w, lut, fbins, wr, wg, wb)
        else:
            _unfilter_bin_row(ft, src, prev, cur, gprev, gcur, rowbins, w, lut, fbins, wr, wg, wb)
        x = 0
        while x + 4 <= w:
            part[0, colcell[x], rowbins[x]] += 1
            part[1, colcell[x + 1], rowbins[x + 1]] += 1
            part[2, colcell[x + 2], rowbins[x + 2]] += 1
            part[3, colcell[x + 3], rowbins[x + 3]] += 1
            x += 4
        while x < w:
            part[0, colcell[x], rowbins[x]] += 1
            x += 1
        if r >= 1:  # the head of row r wraps into the last cells of virtual row r - 1 (r < n*ch always)
            cells = counts[((r - 1) // ch) * n : ((r - 1) // ch + 1) * n]
            for k in range(extra):
                cells[(w + k) // cw, rowbins[k]] += 1
        if (r + 1) % ch == 0 or r == h - 1:  # the cell row is done: add its partial histograms
            cells = counts[(r // ch) * n : (r // ch + 1) * n]
            for j in range(n):
                for b in range(nb):
                    cells[j, b] += part[0, j, b] + part[1, j, b] + part[2, j, b] + part[3, j, b]
            part[:] = 0
        prev, cur = cur, prev
        gprev, gcur = gcur, gprev
    seed_zero_tail(counts, colcell, lut[0], h, n * ch, n, ch, cw, w, extra)
    return True


def rgb_seed_histogram_png(
    path: str | Path, n: int, bins: int, lut: np.ndarray, weights: tuple[float, float, float]
) -> tuple[tuple[int, int], np.ndarray] | None:
    """``((height, width), counts)`` of the seed walk over an 8-bit RGB PNG: counts (n*n, bins+1) int64, a
    pixel binned through ``lut`` (256 entries: the bin of grey (v, v, v)) when grey and by the reference's
    arithmetic with ``weights`` otherwise. None for any other PNG (grey, palette, 16-bit, alpha, interlaced,
    damaged) or a grid whose wrap-around would run past the next row: the caller reads those otherwise."""
    parsed = read_png_raw(path)
    if parsed is None:
        return None
    h, w, colour, raw = parsed
    ch, cw = -(-h // n), -(-w // n)
    if colour != RGB or n * cw - w > w:
        return None
    counts = np.zeros((n * n, bins + 1), dtype=np.int64)
    status = _grey_rgb_seed_hist(raw, h, w, n, ch, cw, lut, counts)
    if status == 1:
        return (h, w), counts
    if status < 0:
        return None
    counts[:] = 0  # a coloured pixel: start again, colour-aware
    wr, wg, wb = weights
    if not _rgb_seed_hist(raw, h, w, n, ch, cw, lut, bins, wr, wg, wb, counts):
        return None
    return (h, w), counts
