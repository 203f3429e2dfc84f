"""The study's ground-truth similarity between two windows: grid-cell histograms compared by Kolmogorov-Smirnov.

Two modes share one core:

``seed``
    Reproduces the study's C++ reference to 1e-9, quirks included. Cells are ``ceil(H/N)`` rows by
    ``ceil(W/N)`` columns laid from the top-left corner over the image walked as one row-major array:
    pixel (r, c) of cell (i, j) is flat index ``(i*ch + r) * W + j*cw + c``. A cell that runs past the
    right edge therefore reads the first pixels of the next image row, and a flat index ``>= H*W`` (past
    the last row) reads the value 0, which falls in bin 0. Every cell thus holds exactly ``ch*cw`` pixels.
    Like the reference (``width == 1500 and height == 1300``) it refuses any image that is not 1500 pixels
    wide x 1300 high (numpy shape (1300, 1500)), the geometry of real COMS frames and KMA's files. With
    N = 24 cells are 55 rows x 63 columns: the last cell column (columns 1449..1511) wraps 12 pixels into
    the next row, and the last cell row (rows 1265..1319) reads 20 rows of zeros.
``general``
    Any image size of at least N x N pixels. Row and column boundaries are cut as ``np.array_split`` does
    (the first ``H mod N`` cell rows are one pixel taller), so no cell wraps or reads padding. Cells may
    differ in pixel count by one row or column; CDFs are compared as fractions. Use it for shrunk frames
    (the detector's 375 x 300 planes) and for satellites other than COMS.

A frame's signature is its per-cell cumulative bin counts; everything else is computed from signatures, so
any window pair costs a max-abs-difference reduction over integers (exact: within one cell both CDFs share
the denominator n, so ``max |Ca - Cb| / n`` is the KS statistic with no rounding before the final divide).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import threading
import weakref
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numba
import numpy as np
from PIL import Image, ImageChops

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.frames.pngfast import decode_png, seed_histogram_png
from satwatch.services.metric.seedpng import rgb_seed_histogram_png

Mode = Literal["seed", "general"]

#: The only image size the reference accepts: 1500 pixels wide x 1300 high, numpy shape (SEED_HEIGHT, SEED_WIDTH).
SEED_WIDTH = 1500
SEED_HEIGHT = 1300
#: The grey weights of the reference, applied in this order in double precision.
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)
#: Bumped whenever the on-disk signature format or the computation changes.
SIGNATURE_VERSION = 2


@dataclass(frozen=True)
class GridSpec:
    """Grid size ``n`` (n x n cells), histogram ``bins`` (values 0..bins) and the mode."""

    n: int = 24
    bins: int = 20
    mode: Mode = "seed"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"grid size must be at least 1, got {self.n}")
        if not 1 <= self.bins <= 255:
            raise ValueError(f"bins must be between 1 and 255 (bin indices are kept in 8 bits), got {self.bins}")
        if self.mode not in ("seed", "general"):
            raise ValueError(f"mode must be 'seed' or 'general', got {self.mode!r}")

    @property
    def cells(self) -> int:
        return self.n * self.n

    @property
    def key(self) -> str:
        """A short text naming the spec, used in cache keys."""
        return f"{self.mode}-n{self.n}-b{self.bins}-v{SIGNATURE_VERSION}"


class ImageSizeError(ValueError):
    """An image the seed-compatible mode (like the reference) refuses."""


#: Cell slots of a signature are padded to a multiple of this (one AVX-512 register of int16).
LANES = 32


class _Arena:
    """Signature arrays packed side by side into large buffers.

    The pair kernels read slices of many frames at once. As separate 94 KB allocations each frame sits in its
    own run of 4 KB pages and the kernels spend most of their time on TLB misses (measured: 3,000 window pairs/s
    for 64 windows sharing no frames, against 11,000/s from one buffer). Buffers of ``CHUNK`` bytes are big enough
    for numpy to ask the kernel for transparent huge pages. A buffer is freed when the last signature in it
    is; the cost is one copy of each signature as it is made (about 10 us).
    """

    CHUNK = 64 << 20
    ALIGN = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunk: np.ndarray | None = None
        self._used = 0
        self._chunks: dict[int, weakref.ref[np.ndarray]] = {}

    def holds(self, a: np.ndarray) -> bool:
        base = a.base
        ref = self._chunks.get(id(base)) if base is not None else None
        return ref is not None and ref() is base

    def adopt(self, a: np.ndarray) -> np.ndarray:
        """``a`` itself if it already lives here, else a C-contiguous copy that does."""
        if self.holds(a) and a.flags.c_contiguous:
            return a
        nbytes = a.nbytes
        if nbytes == 0 or nbytes > self.CHUNK // 4:
            return np.ascontiguousarray(a)
        size = -(-nbytes // self.ALIGN) * self.ALIGN
        with self._lock:
            if self._chunk is None or self._used + size > self._chunk.size:
                self._chunks = {k: r for k, r in self._chunks.items() if r() is not None}
                self._chunk = np.empty(self.CHUNK, dtype=np.uint8)
                self._chunks[id(self._chunk)] = weakref.ref(self._chunk)
                self._used = 0
            out = self._chunk[self._used : self._used + nbytes].view(a.dtype).reshape(a.shape)
            self._used += size
        out[...] = a
        return out


_ARENA = _Arena()


@dataclass(frozen=True, eq=False)
class FrameSignature:
    """Per-cell cumulative bin counts of one frame's channels.

    ``cum`` has shape (bins, slots), bins outermost: ``cum[b, k]`` is how many pixels of cell k
    (channel-major, then row-major cells) fall in bins 0..b, so the pair kernel streams whole rows of cells
    through SIMD lanes. The last bin (always the cell's pixel count) is left out; slots past
    ``channels * n * n`` (up to a multiple of ``LANES``) are zero padding.
    ``cell_pixels`` is the pixel count of each of the n*n cells. ``key`` names the frame's files when the
    signature came from files, so windows sharing a frame can share its pair results.
    """

    spec: GridSpec
    shape: tuple[int, int]
    channels: int
    cum: np.ndarray
    cell_pixels: np.ndarray
    key: str | None = None

    def __post_init__(self) -> None:
        # Packed with other frames' signatures (see _Arena): the pair kernels run 3-4x faster over many frames.
        if isinstance(self.cum, np.ndarray) and self.cum.ndim == 2:
            object.__setattr__(self, "cum", _ARENA.adopt(self.cum))

    @property
    def size(self) -> int:
        """Number of cells over all channels."""
        return self.channels * self.spec.cells

    @property
    def nbytes(self) -> int:
        return int(self.cum.nbytes + self.cell_pixels.nbytes)

    def cumulative(self) -> np.ndarray:
        """Cumulative counts as (channels, n*n, bins), int64."""
        flat = self.cum[:, : self.size].T
        return flat.astype(np.int64).reshape(self.channels, self.spec.cells, self.spec.bins)

    def histograms(self) -> np.ndarray:
        """Per-bin counts, shape (channels, n*n, bins + 1)."""
        cum = self.cumulative()
        total = np.broadcast_to(self.cell_pixels.astype(np.int64)[None, :, None], (self.channels, cum.shape[1], 1))
        return np.diff(np.concatenate([cum, total], axis=2), axis=2, prepend=0)

    def weights(self) -> np.ndarray:
        """1 / pixel count per cell slot of ``cum`` (zero for padding), float64 (slots,)."""
        w = np.zeros(self.cum.shape[1])
        w[: self.size] = np.tile(1.0 / self.cell_pixels, self.channels)
        return w


@dataclass(frozen=True, eq=False)
class WindowSignature:
    """The frame signatures of one window, in time order."""

    frames: tuple[FrameSignature, ...]

    @property
    def spec(self) -> GridSpec:
        return self.frames[0].spec

    @property
    def channels(self) -> int:
        return self.frames[0].channels

    @property
    def size(self) -> int:
        """Number of compared cells (frames * channels * n * n)."""
        return len(self.frames) * self.frames[0].size


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


# ---------------------------------------------------------------------------------------------------
# Grid histograms


def seed_cell_size(height: int, width: int, n: int) -> tuple[int, int]:
    """The reference's cell size: ``ceil(H/N)`` rows by ``ceil(W/N)`` columns."""
    return math.ceil(height / n), math.ceil(width / n)


@lru_cache(maxsize=8)
def _general_layout(height: int, width: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell row of every image row, cell column of every image column (array_split boundaries), and the
    pixel count of every cell."""
    if height < n or width < n:
        raise ValueError(f"a {height}x{width} image cannot be cut into a {n}x{n} grid without empty cells")
    rs = np.array([len(a) for a in np.array_split(np.arange(height), n)], dtype=np.int64)
    cs = np.array([len(a) for a in np.array_split(np.arange(width), n)], dtype=np.int64)
    rowcell = np.repeat(np.arange(n, dtype=np.int64), rs)
    colcell = np.repeat(np.arange(n, dtype=np.int64), cs)
    pixels = np.outer(rs, cs).ravel().astype(np.int64)
    for a in (rowcell, colcell, pixels):
        a.setflags(write=False)
    return rowcell, colcell, pixels


@numba.njit(cache=True, nogil=True)
def _hist_seed(
    flat: np.ndarray, lut: np.ndarray, h: int, w: int, n: int, ch: int, cw: int, nb: int
) -> np.ndarray:  # pragma: no cover - compiled
    """Seed walk: pixel (r, c) of cell (i, j) is flat[(i*ch + r) * w + j*cw + c], 0 past the end."""
    counts = np.zeros((n * n, nb), dtype=np.int64)
    total = h * w
    zero_bin = lut[0]
    for i in range(n):
        for r in range(ch):
            base = (i * ch + r) * w
            for j in range(n):
                cell = counts[i * n + j]
                start = base + j * cw
                if start + cw <= total:
                    for c in range(cw):
                        cell[lut[flat[start + c]]] += 1
                else:
                    for c in range(cw):
                        idx = start + c
                        cell[lut[flat[idx]] if idx < total else zero_bin] += 1
    return counts


@numba.njit(cache=True, nogil=True)
def _hist_general(
    img: np.ndarray, lut: np.ndarray, rowcell: np.ndarray, colcell: np.ndarray, n: int, nb: int
) -> np.ndarray:  # pragma: no cover - compiled
    counts = np.zeros((n * n, nb), dtype=np.int64)
    for r in range(img.shape[0]):
        row = counts[rowcell[r] * n : (rowcell[r] + 1) * n]
        for c in range(img.shape[1]):
            row[colcell[c], lut[img[r, c]]] += 1
    return counts


_IDENTITY = np.arange(256, dtype=np.uint8)


def grid_histograms(values: np.ndarray, spec: GridSpec, lut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell bin counts of one plane (H, W) uint8: returns (counts (n*n, bins+1), cell pixel counts).

    ``values`` are bin indices, or with ``lut`` (256 entries) pixel values mapped to bins on the fly.
    This is the shared core of both modes and takes any size; the seed-mode size check lives in
    :func:`frame_signature`. Pixels the seed walk reads past the end are 0 and go through ``lut`` too
    (value 0 is bin 0 either way).
    """
    h, w = values.shape
    n, nb = spec.n, spec.bins + 1
    table = _IDENTITY if lut is None else lut
    img = np.ascontiguousarray(values, dtype=np.uint8)
    if spec.mode == "seed":
        ch, cw = seed_cell_size(h, w, n)
        counts = _hist_seed(img.ravel(), table, h, w, n, ch, cw, nb)
        return counts, np.full(n * n, ch * cw, dtype=np.int64)
    rowcell, colcell, pixels = _general_layout(h, w, n)
    return _hist_general(img, table, rowcell, colcell, n, nb), pixels.copy()


def _check_seed_size(shape: tuple[int, ...], source: str | None) -> None:
    if tuple(shape) != (SEED_HEIGHT, SEED_WIDTH):
        where = f"{source}: " if source else ""
        raise ImageSizeError(
            f"{where}image is {shape[1]} wide x {shape[0]} high; the seed-compatible metric, like the study's "
            f"program, only accepts COMS images {SEED_WIDTH} wide x {SEED_HEIGHT} high; use mode='general' for "
            "other sizes"
        )


Plane = tuple[np.ndarray, np.ndarray | None]  # uint8 values and the lut mapping them to bins (None: bins)


def _signature_from_planes(planes: Sequence[Plane], spec: GridSpec) -> FrameSignature:
    hists = []
    pixels: np.ndarray | None = None
    for values, lut in planes:
        counts, pixels = grid_histograms(values, spec, lut)
        hists.append(counts)
    assert pixels is not None
    shape = (int(planes[0][0].shape[0]), int(planes[0][0].shape[1]))
    return _signature_from_counts(hists, pixels, shape, spec)


def _cum_dtype(max_cell_pixels: int) -> type[np.signedinteger]:
    """The narrowest integer type the pair kernels take that holds a cell's cumulative counts."""
    return np.int16 if max_cell_pixels <= np.iinfo(np.int16).max else np.int32


def _signature_from_counts(
    hists: Sequence[np.ndarray], pixels: np.ndarray, shape: tuple[int, int], spec: GridSpec
) -> FrameSignature:
    """Signature from each channel's per-cell bin counts (n*n, bins+1) and the cells' pixel counts."""
    counts_all = np.stack(hists)  # (C, n*n, nb)
    cum = np.cumsum(counts_all[:, :, : spec.bins], axis=2).reshape(-1, spec.bins)
    dtype = _cum_dtype(int(pixels.max()))
    slots = -(-cum.shape[0] // LANES) * LANES
    blocked = np.zeros((spec.bins, slots), dtype=dtype)
    blocked[:, : cum.shape[0]] = cum.T
    return FrameSignature(
        spec=spec,
        shape=shape,
        channels=len(hists),
        cum=blocked,
        cell_pixels=pixels.astype(np.int32),
    )


def frame_signature(
    grey: np.ndarray, spec: GridSpec, *, check_size: bool = True, source: str | None = None
) -> FrameSignature:
    """Signature of one frame given as grey planes (C, H, W) (or one plane (H, W)), float32 or uint8.

    Values are binned as they are; to reproduce the reference from RGB files use
    :func:`frame_signature_from_rgb` or :func:`frame_signature_from_paths`. In seed mode the frame must be
    1500 wide x 1300 high unless ``check_size=False``, which runs the same quirky walk on any size (for tests of the
    quirks; the reference itself refuses).
    """
    if grey.ndim == 2:
        grey = grey[None]
    if grey.ndim != 3:
        raise ValueError(f"expected grey planes (C, H, W), got shape {grey.shape}")
    if spec.mode == "seed" and check_size:
        _check_seed_size(grey.shape[1:], source)
    if grey.dtype == np.uint8:
        return _signature_from_planes([(p, _uint8_bin_table(spec.bins)) for p in grey], spec)
    return _signature_from_planes([(bin_values(p, spec.bins), None) for p in grey], spec)


def frame_signature_from_rgb(
    rgb: Sequence[np.ndarray] | np.ndarray, spec: GridSpec, *, check_size: bool = True, source: str | None = None
) -> FrameSignature:
    """Signature of one frame given as RGB channel images (C, H, W, 3) uint8, converted as the reference does."""
    planes = [_rgb_plane(np.asarray(im), spec.bins) for im in rgb]
    if spec.mode == "seed" and check_size:
        for values, _ in planes:
            _check_seed_size(values.shape, source)
    return _signature_from_planes(planes, spec)


@lru_cache(maxsize=16)
def _grey_rgb_bin_table(bins: int) -> np.ndarray:
    """Bin of the reference grey of (v, v, v) for every v: KMA's grey-as-RGB pixels in one lookup."""
    return bin_values(_grey_table(), bins)


def _rgb_plane(rgb: np.ndarray, bins: int) -> Plane:
    r, g, b = (rgb[:, :, k] for k in range(3))
    if np.array_equal(r, g) and np.array_equal(g, b):
        return np.ascontiguousarray(r), _grey_rgb_bin_table(bins)
    return rgb_bins(rgb, bins), None


def read_reference_grey(path: str | Path) -> np.ndarray:
    """Read an image file as the reference does (RGB, 8 bits) and return its float32 grey plane."""
    with Image.open(path) as im:
        im.load()
        if im.mode == "L":
            return _grey_table()[np.asarray(im, dtype=np.uint8)]
        rgb = im if im.mode == "RGB" else im.convert("RGB")
        return grey_from_rgb(np.asarray(rgb, dtype=np.uint8))


def _read_plane(path: str, bins: int) -> Plane:
    """One image file as the reference reads it (8-bit RGB, then grey), as values plus bin lookup.

    Plain 8-bit grey and RGB PNGs go through :mod:`satwatch.services.frames.pngfast` (libdeflate and a compiled
    unfilter that, for KMA's grey-as-RGB files, unfilters the red bytes only); anything else through Pillow.
    Both give the same pixels.
    """
    fast = decode_png(path) if path.lower().endswith(".png") else None
    if fast is not None:
        return _plane_from_decoded(fast[0], fast[1], bins)
    return _read_plane_pillow(path, bins)


def _plane_from_decoded(pixels: np.ndarray, grey: bool, bins: int) -> Plane:
    if grey:
        return pixels, _grey_rgb_bin_table(bins)
    return rgb_bins(pixels, bins), None


def _read_plane_pillow(path: str, bins: int) -> Plane:
    """:func:`_read_plane` through Pillow: any format and mode Pillow reads."""
    with Image.open(path) as im:
        im.load()
        if im.mode == "L":
            return np.asarray(im, dtype=np.uint8), _grey_rgb_bin_table(bins)
        rgb = im if im.mode == "RGB" else im.convert("RGB")
        red, green, blue = rgb.split()
        # Grey stored as RGB (KMA's PNGs): compare the bands in C and bin the red band by table.
        if ImageChops.difference(red, green).getbbox() is None and ImageChops.difference(green, blue).getbbox() is None:
            return np.asarray(red, dtype=np.uint8), _grey_rgb_bin_table(bins)
        return rgb_bins(np.asarray(rgb, dtype=np.uint8), bins), None


def _frame_signature_uncached(paths: Sequence[str], spec: GridSpec, check_size: bool) -> FrameSignature:
    # Per channel: the seed walk's bin counts straight from the PNG decoder (KMA's grey-as-RGB files in
    # seed mode), or a plane of values to walk afterwards (anything else).
    items: list[tuple[tuple[int, ...], np.ndarray | None, Plane | None]] = []
    lut = _grey_rgb_bin_table(spec.bins)
    for p in paths:
        fast = None
        if spec.mode == "seed" and p.lower().endswith(".png"):
            # 8-bit RGB (KMA's files, with or without colour overlays): one fused pass, no image kept.
            fused = rgb_seed_histogram_png(p, spec.n, spec.bins, lut, GREY_WEIGHTS)
            if fused is not None:
                items.append((fused[0], fused[1], None))
                if check_size:
                    _check_seed_size(fused[0], str(p))
                continue
            fast = seed_histogram_png(p, spec.n, spec.bins + 1, lut)
        if fast is not None and fast[1] is not None:
            shape: tuple[int, ...] = fast[0]
            item: tuple[tuple[int, ...], np.ndarray | None, Plane | None] = (shape, fast[1], None)
        else:
            if fast is not None:
                assert fast[2] is not None
                plane = _plane_from_decoded(fast[2], fast[3], spec.bins)
            else:
                plane = _read_plane(p, spec.bins)
            shape = plane[0].shape
            item = (shape, None, plane)
        if spec.mode == "seed" and check_size:
            _check_seed_size(shape, str(p))
        items.append(item)
    shapes = {it[0] for it in items}
    if len(shapes) != 1:
        raise ValueError(f"channel images of one frame differ in size: {sorted(shapes)} ({', '.join(paths)})")
    if all(it[1] is None for it in items):
        return _signature_from_planes([it[2] for it in items if it[2] is not None], spec)
    hists = []
    pixels: np.ndarray | None = None
    for _, fused, pl in items:
        if pl is not None:
            fused, pixels = grid_histograms(pl[0], spec, pl[1])
        assert fused is not None
        hists.append(fused)
    h, w = items[0][0]
    if pixels is None:
        ch, cw = seed_cell_size(h, w, spec.n)
        pixels = np.full(spec.cells, ch * cw, dtype=np.int64)
    return _signature_from_counts(hists, pixels, (h, w), spec)


# ---------------------------------------------------------------------------------------------------
# Windows and pair similarity


def cdf_features(planes: np.ndarray, spec: GridSpec) -> np.ndarray:
    """Per channel and cell, the fraction of pixels in bins below 1..B: shape (C * B, n, n), float32.

    The empirical CDFs the metric compares, channel-major then bin; the frame encoder's input when its card
    says ``front_end = "grid_cdf"``. Computed from the frame's signature (about 1.5 ms for 4 x 300 x 375).
    """
    return cdf_from_signature(frame_signature(planes, spec))


def cdf_from_signature(sig: FrameSignature) -> np.ndarray:
    """:func:`cdf_features` from a signature already computed (the detector signs each frame once)."""
    cdf = sig.cumulative() / sig.cell_pixels.astype(np.float64)[None, :, None]  # (C, n*n, B)
    n = sig.spec.n
    return np.ascontiguousarray(cdf.transpose(0, 2, 1), dtype=np.float32).reshape(sig.channels * sig.spec.bins, n, n)


def window_signature(frames: Sequence[FrameSignature]) -> WindowSignature:
    """Group the frame signatures of one window (all of one grid spec and channel count)."""
    if not frames:
        raise ValueError("a window needs at least one frame")
    spec, ch = frames[0].spec, frames[0].channels
    for f in frames:
        if f.spec != spec or f.channels != ch:
            raise ValueError("all frames of a window must share grid spec and channel count")
    return WindowSignature(tuple(frames))


#: Cell slots a pair kernel works on at a time (a tile's slices of 2 * TILE frames stay in L2).
SLICE = 512


@numba.njit(cache=True, nogil=True, inline="always")
def _absdiff(x, y, kind):  # pragma: no cover - compiled
    # Explicit narrow casts keep LLVM on 16-bit lanes (numba would widen to int64).
    d = kind(x - y)
    return kind(d if d >= 0 else -d)


@numba.njit(cache=True, nogil=True, inline="always")
def _hi(p, q):  # pragma: no cover - compiled
    return p if p >= q else q


@numba.njit(cache=True, nogil=True, inline="always")
def _max_over_bins(a: np.ndarray, b: np.ndarray, s0: int, s1: int, mx: np.ndarray) -> None:  # pragma: no cover
    """mx[j - s0] = max over bins k of |a[k, j] - b[k, j]| for slots s0 <= j < s1 of two (bins, slots)
    signatures.

    Bins are taken four at a time so the running maximum ``mx`` is loaded and stored once per four bins;
    the slot loop (contiguous in memory) is the one LLVM vectorises.
    """
    nb = a.shape[0]
    n = s1 - s0
    kind = a.dtype.type
    for j in range(n):
        mx[j] = 0
    k = 0
    while k + 4 <= nb:
        a0, a1, a2, a3 = a[k, s0:s1], a[k + 1, s0:s1], a[k + 2, s0:s1], a[k + 3, s0:s1]
        b0, b1, b2, b3 = b[k, s0:s1], b[k + 1, s0:s1], b[k + 2, s0:s1], b[k + 3, s0:s1]
        for j in range(n):
            m = _hi(
                _hi(_absdiff(a0[j], b0[j], kind), _absdiff(a1[j], b1[j], kind)),
                _hi(_absdiff(a2[j], b2[j], kind), _absdiff(a3[j], b3[j], kind)),
            )
            mx[j] = _hi(mx[j], m)
        k += 4
    while k < nb:
        ak, bk = a[k, s0:s1], b[k, s0:s1]
        for j in range(n):
            mx[j] = _hi(mx[j], _absdiff(ak[j], bk[j], kind))
        k += 1


@numba.njit(cache=True, nogil=True)
def _max_diff_add(
    a: np.ndarray, b: np.ndarray, s0: int, s1: int, mx: np.ndarray, acc: np.ndarray
) -> None:  # pragma: no cover - compiled
    """acc[j - s0] += the per-slot maximum of :func:`_max_over_bins`."""
    _max_over_bins(a, b, s0, s1, mx)
    for j in range(s1 - s0):
        acc[j] += mx[j]


@numba.njit(cache=True, nogil=True)
def _max_diff_sum(a: np.ndarray, b: np.ndarray, s0: int, s1: int, mx: np.ndarray) -> int:  # pragma: no cover
    """Sum over slots s0 <= j < s1 of the per-slot maximum of :func:`_max_over_bins`, as one integer, for
    frames whose cells all hold the same number of pixels."""
    _max_over_bins(a, b, s0, s1, mx)
    total = 0
    for j in range(s1 - s0):
        total += int(mx[j])
    return total


@numba.njit(cache=True, nogil=True)
def _block_sums(
    frames: Sequence[np.ndarray],
    wins: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    upper: bool,
    tile: int,
    step: int,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """out[i, j] = sum over frames and cell slots of max over bins |Ca - Cb| for windows rows[i], cols[j]
    (rows of frame indices into ``frames``); with ``upper`` only where rows[i] < cols[j] (the rest is left).

    For frames whose cells all hold the same pixel count, so one integer per pair suffices. Windows are
    taken ``tile`` rows by ``tile`` columns at a time and, within a tile, a frame and ``step`` cell slots
    at a time: the tile's slices (2 * tile * bins * step * 2 bytes) stay in L2, a row window's slice stays
    in L1 while it meets every column window, and each frame is read from memory once per tile.
    """
    nr, nc, nf = rows.shape[0], cols.shape[0], wins.shape[1]
    ns = frames[0].shape[1]
    width = min(ns, step)
    mx = np.zeros(width, dtype=frames[0].dtype)
    for r0 in range(0, nr, tile):
        r1 = min(r0 + tile, nr)
        for c0 in range(0, nc, tile):
            c1 = min(c0 + tile, nc)
            if upper and rows[r0] >= cols[c1 - 1]:
                continue  # the whole tile lies on or below the diagonal
            for i in range(r0, r1):
                for j in range(c0, c1):
                    if not upper or rows[i] < cols[j]:
                        out[i, j] = 0
            for t in range(nf):
                for s0 in range(0, ns, width):
                    s1 = min(s0 + width, ns)
                    for i in range(r0, r1):
                        a = frames[wins[rows[i], t]]
                        u = wins[rows[i], t]
                        for j in range(c0, c1):
                            if upper and rows[i] >= cols[j]:
                                continue
                            v = wins[cols[j], t]
                            if u != v:
                                out[i, j] += _max_diff_sum(a, frames[v], s0, s1, mx)


@numba.njit(cache=True, nogil=True)
def _weighted(acc: np.ndarray, w: np.ndarray) -> float:  # pragma: no cover - compiled
    s = 0.0
    for j in range(acc.shape[0]):
        s += acc[j] * w[j]
    return s


@numba.njit(cache=True, nogil=True)
def _pair_sums(
    frames: Sequence[np.ndarray],
    w: np.ndarray,
    wins: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    chunk: int,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """out[p] = KS sum of windows ia[p], ib[p] (rows of frame indices into ``frames``), no memo.

    Per pair, the integer maxima of every cell slot are summed over the window's frames and weighted once.
    Pairs are taken ``chunk`` at a time, a slice of cell slots and a frame at a time, so when the caller
    orders pairs in tiles of a few windows the slices they read stay in cache for the whole tile and each
    frame is streamed from memory once per tile rather than once per pair.
    """
    npairs, nf = ia.shape[0], wins.shape[1]
    ns = frames[0].shape[1]
    width = min(ns, SLICE)
    acc = np.zeros((chunk, width), dtype=np.int32)
    mx = np.zeros(width, dtype=frames[0].dtype)
    for c0 in range(0, npairs, chunk):
        c1 = min(c0 + chunk, npairs)
        for p in range(c0, c1):
            out[p] = 0.0
        for s0 in range(0, ns, width):
            s1 = min(s0 + width, ns)
            acc[:] = 0
            for t in range(nf):
                for p in range(c0, c1):
                    u = wins[ia[p], t]
                    v = wins[ib[p], t]
                    if u != v:
                        _max_diff_add(frames[u], frames[v], s0, s1, mx, acc[p - c0])
            for p in range(c0, c1):
                out[p] += _weighted(acc[p - c0, : s1 - s0], w[s0:s1])


@numba.njit(cache=True, nogil=True)
def _pair_sums_memo(
    frames: Sequence[np.ndarray],
    w: np.ndarray,
    wins: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    memo: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Like :func:`_pair_sums`, but ``memo`` (U x U, NaN = unknown) remembers frame-pair sums, so
    overlapping (sliding) windows pay for each frame pair once."""
    ns = frames[0].shape[1]
    acc = np.zeros(ns, dtype=np.int32)
    mx = np.zeros(ns, dtype=frames[0].dtype)
    for p in range(ia.shape[0]):
        s = 0.0
        for t in range(wins.shape[1]):
            u = wins[ia[p], t]
            v = wins[ib[p], t]
            if u == v:
                continue
            r = memo[u, v]
            if np.isnan(r):
                acc[:] = 0
                _max_diff_add(frames[u], frames[v], 0, ns, mx, acc)
                r = _weighted(acc, w)
                memo[u, v] = r
                memo[v, u] = r
            s += r
        out[p] = s


#: Largest number of distinct frames for which frame-pair results are memoised (U*U float64).
MEMO_MAX_FRAMES = 4096
#: Windows per side of the tiles in which :func:`pairwise_similarity` visits pairs sharing no frames.
TILE = 8
#: Pairs a pair kernel call keeps in flight (several tiles of one row strip, which share their row windows).
CHUNK = 4 * TILE * TILE
#: Windows per side of the tiles of :func:`_block_sums` (frames whose cells share one pixel count).
BLOCK_TILE = 32
#: Cell slots :func:`_block_sums` works on at a time (a window's slice: bins x 256 x 2 bytes, 10 KB at 20 bins).
BLOCK_STEP = 256


class _Batch:
    """Distinct frames of some windows stacked once, with each window as a row of frame indices."""

    def __init__(self, windows: Sequence[WindowSignature], stack: bool = True) -> None:
        first = windows[0]
        index: dict[object, int] = {}
        frames: list[FrameSignature] = []
        rows = []
        slots = 0
        for win in windows:
            if win.spec != first.spec or win.channels != first.channels or len(win.frames) != len(first.frames):
                raise ValueError(
                    f"windows differ in grid spec, channels or length ({win.spec}, {win.channels}x"
                    f"{len(win.frames)} vs {first.spec}, {first.channels}x{len(first.frames)})"
                )
            row = []
            for f in win.frames:
                ident: object = f.key if f.key is not None else id(f)
                if ident not in index:
                    index[ident] = len(frames)
                    frames.append(f)
                row.append(index[ident])
                slots += 1
            rows.append(row)
        ref = frames[0]
        self.uniform = all(
            f.cum.dtype == ref.cum.dtype and np.array_equal(f.cell_pixels, ref.cell_pixels) for f in frames
        )
        self.frames = frames
        self.wins = np.array(rows, dtype=np.int64)
        self.size = first.size
        #: Some frame sits in more than one window slot: frame-pair results are worth remembering.
        self.shared = len(frames) < slots and len(frames) <= MEMO_MAX_FRAMES
        self.stacked = stack and self.uniform
        #: Every cell of every frame holds the same pixel count n (seed mode; general mode when N divides the
        #: image size): a window pair's KS sum is one integer divided by n.
        self.equal = self.uniform and int(ref.cell_pixels.min()) == int(ref.cell_pixels.max())
        if self.uniform:
            self.weights = ref.weights()
        if self.stacked:
            # A typed list refers to the frames' arrays: no copy of what may be hundreds of MB.
            self.stack = numba.typed.List([f.cum for f in frames])
            if self.shared:
                self.memo = np.full((len(frames), len(frames)), np.nan)

    @property
    def blocked(self) -> bool:
        """Pairs go through :func:`_block_sums` (no frames to share, equal cells)."""
        return self.stacked and self.equal and not self.shared

    def block_sums(self, rows: np.ndarray, cols: np.ndarray, upper: bool = False) -> np.ndarray:
        """KS sums (float64, len(rows) x len(cols)) of windows rows[i] vs cols[j] (only i < j with ``upper``,
        zero elsewhere); needs :attr:`blocked`."""
        out = np.zeros((len(rows), len(cols)), dtype=np.int64)
        # One or a few query windows: nothing to share between rows, so stream whole frames (contiguous
        # reads the prefetcher follows) rather than slices.
        step = BLOCK_STEP if len(rows) >= 4 else self.frames[0].cum.shape[1]
        _block_sums(self.stack, self.wins, rows, cols, upper, BLOCK_TILE, step, out)
        return out / float(self.frames[0].cell_pixels[0])

    def sums(self, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        out = np.empty(len(ia))
        if self.stacked:
            if self.shared:
                _pair_sums_memo(self.stack, self.weights, self.wins, ia, ib, self.memo, out)
            else:
                _pair_sums(self.stack, self.weights, self.wins, ia, ib, CHUNK, out)
            return out
        if self.uniform:
            # A few pairs: one compiled call per frame pair, without copying the frames into one stack.
            ns = self.frames[0].cum.shape[1]
            acc = np.zeros(ns, dtype=np.int32)
            mx = np.zeros(ns, dtype=self.frames[0].cum.dtype)
            for p, (i, j) in enumerate(zip(ia, ib, strict=True)):
                acc[:] = 0
                for u, v in zip(self.wins[i], self.wins[j], strict=True):
                    if u != v:
                        _max_diff_add(self.frames[u].cum, self.frames[v].cum, 0, ns, mx, acc)
                out[p] = _weighted(acc, self.weights)
            return out
        # Cells that differ in pixel count (general mode, frames of different sizes): compare fractions.
        fr = [f.cumulative() / f.cell_pixels[None, :, None] for f in self.frames]
        for p, (i, j) in enumerate(zip(ia, ib, strict=True)):
            out[p] = sum(
                float(np.abs(fr[u] - fr[v]).max(axis=2).sum()) for u, v in zip(self.wins[i], self.wins[j], strict=True)
            )
        return out


def _tiled_pairs(m: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs i < j of m windows, ordered tile by tile (``tile`` windows a side)."""
    ia, ib = [], []
    for r0 in range(0, m, tile):
        for c0 in range(r0, m, tile):
            i, j = np.meshgrid(np.arange(r0, min(r0 + tile, m)), np.arange(c0, min(c0 + tile, m)), indexing="ij")
            keep = i < j
            ia.append(i[keep])
            ib.append(j[keep])
    return np.concatenate(ia).astype(np.int64), np.concatenate(ib).astype(np.int64)


def latest_frames(window: WindowSignature, frames: int) -> WindowSignature:
    """The last ``frames`` frames of ``window`` (the window itself when it holds no more)."""
    if frames < 1:
        raise ValueError(f"a window needs at least one frame, asked for {frames}")
    return window if len(window.frames) <= frames else WindowSignature(window.frames[-frames:])


def aligned(a: WindowSignature, b: WindowSignature) -> tuple[WindowSignature, WindowSignature]:
    """Two windows cut to the frames they are compared on: the latest ``min(len(a), len(b))`` of each.

    A part-filled window (fewer frames than the rule's 20, after a gap or at the start of an archive) is
    compared with another window frame by frame from the end: its last frame with the other's last frame,
    and so on back. Equal lengths are left as they are.
    """
    k = min(len(a.frames), len(b.frames))
    return latest_frames(a, k), latest_frames(b, k)


@dataclass(frozen=True)
class WindowComparison:
    """The similarity of two windows and what it was computed on.

    ``frames`` frame pairs were compared (the latest ``min(frames_a, frames_b)`` of each window, aligned from
    the end); the similarity is the mean of ``1 - KS`` over those frames, their channels and cells.
    """

    similarity: float
    frames: int
    frames_a: int
    frames_b: int

    @property
    def partial(self) -> bool:
        """A window held fewer frames than the other, so not all of the longer one was compared."""
        return self.frames_a != self.frames_b

    def note(self) -> str:
        """One line saying what was compared (empty when both windows held the same number of frames)."""
        if not self.partial:
            return ""
        return (
            f"windows hold {self.frames_a} and {self.frames_b} frames: compared the latest {self.frames} frames "
            f"of each, aligned from the end"
        )


def compare_windows(a: WindowSignature, b: WindowSignature) -> WindowComparison:
    """:func:`window_similarity` with the number of frames compared (part-filled windows allowed)."""
    return WindowComparison(window_similarity(a, b), min(len(a.frames), len(b.frames)), len(a.frames), len(b.frames))


def window_similarity(a: WindowSignature, b: WindowSignature) -> float:
    """The study's window similarity: mean over frames, channels and cells of ``1 - KS``.

    Windows of different lengths (part-filled ones) are compared on their latest ``min(len(a), len(b))``
    frames, aligned from the end (:func:`aligned`), and the mean is over those frames.
    """
    a, b = aligned(a, b)
    batch = _Batch([a, b], stack=False)
    return float(1.0 - batch.sums(np.array([0]), np.array([1]))[0] / a.size)


def _by_compared_length(lengths: Sequence[int], query: int) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(lengths):
        groups.setdefault(min(m, query), []).append(i)
    return groups


def similarity_one_to_many(query: WindowSignature, many: Sequence[WindowSignature]) -> np.ndarray:
    """Similarity of ``query`` to each of ``many``, as a float64 array (frame pairs shared by overlapping
    candidates are computed once). Windows of other lengths are compared as :func:`window_similarity` does."""
    if not many:
        return np.empty(0)
    lq = len(query.frames)
    if all(len(m.frames) == lq for m in many):
        return _one_to_many_equal(query, many)
    groups = _by_compared_length([len(m.frames) for m in many], lq)
    out = np.empty(len(many))
    for k, idx in groups.items():
        out[idx] = _one_to_many_equal(latest_frames(query, k), [latest_frames(many[i], k) for i in idx])
    return out


def compare_one_to_many(query: WindowSignature, many: Sequence[WindowSignature]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`similarity_one_to_many` and, per candidate, how many frames were compared (int64 array)."""
    lq = len(query.frames)
    frames = np.array([min(lq, len(m.frames)) for m in many], dtype=np.int64)
    return similarity_one_to_many(query, many), frames


def _one_to_many_equal(query: WindowSignature, many: Sequence[WindowSignature]) -> np.ndarray:
    batch = _Batch([query, *many])
    m = len(many)
    if batch.blocked:
        cols = np.arange(1, m + 1, dtype=np.int64)
        return 1.0 - batch.block_sums(np.zeros(1, dtype=np.int64), cols)[0] / query.size
    return 1.0 - batch.sums(np.zeros(m, dtype=np.int64), np.arange(1, m + 1, dtype=np.int64)) / query.size


def pairwise_similarity(windows: Sequence[WindowSignature]) -> np.ndarray:
    """All-pairs similarity matrix (M, M); sliding windows share frames, so each frame pair is reduced once.

    Windows of different lengths are compared as :func:`window_similarity` does (latest frames, aligned from
    the end); such a set is computed once per distinct compared length.
    """
    m = len(windows)
    lengths = [len(w.frames) for w in windows]
    if len(set(lengths)) <= 1:
        return _pairwise_equal(windows)
    result = np.ones((m, m))
    for k in sorted(set(lengths)):
        # Pairs whose shorter window holds k frames: compare the latest k frames of every window that long.
        members = [i for i in range(m) if lengths[i] >= k]
        sub = _pairwise_equal([latest_frames(windows[i], k) for i in members])
        idx = np.array(members)
        short = np.array([lengths[i] == k for i in members])
        take = short[:, None] | short[None, :]
        rows, cols = np.nonzero(take)
        result[idx[rows], idx[cols]] = sub[rows, cols]
    np.fill_diagonal(result, 1.0)
    return result


def _pairwise_equal(windows: Sequence[WindowSignature]) -> np.ndarray:
    m = len(windows)
    result = np.ones((m, m))
    if m < 2:
        return result
    batch = _Batch(windows)
    if batch.blocked:
        idx = np.arange(m, dtype=np.int64)
        sums = batch.block_sums(idx, idx, upper=True)
        iu, ju = np.triu_indices(m, 1)
        sims = 1.0 - sums[iu, ju] / batch.size
        result[iu, ju] = sims
        result[ju, iu] = sims
        return result
    ia, ib = _tiled_pairs(m, TILE)
    sims = 1.0 - batch.sums(ia, ib) / batch.size
    result[ia, ib] = sims
    result[ib, ia] = sims
    return result


def cell_similarities(a: WindowSignature, b: WindowSignature) -> np.ndarray:
    """``1 - D`` of every cell pair, shape (frames, channels, n, n); windows of different lengths are cut to
    their latest common number of frames first (:func:`aligned`)."""
    a, b = aligned(a, b)
    _Batch([a, b], stack=False)  # validates compatibility
    n = a.spec.n
    out = np.empty((len(a.frames), a.channels, n, n))
    for t, (fa, fb) in enumerate(zip(a.frames, b.frames, strict=True)):
        ca, cb = fa.cumulative(), fb.cumulative()
        if np.array_equal(fa.cell_pixels, fb.cell_pixels):
            d = np.abs(ca - cb).max(axis=2) / fa.cell_pixels
        else:
            d = np.abs(ca / fa.cell_pixels[None, :, None] - cb / fb.cell_pixels[None, :, None]).max(axis=2)
        out[t] = (1.0 - d).reshape(a.channels, n, n)
    return out


# ---------------------------------------------------------------------------------------------------
# On-disk cache and file-level entry points


class SignatureCache:
    """Frame signatures on disk, keyed by each channel file's resolved path, mtime and size plus the spec.

    A file rewritten in place gets a new mtime and so a new key; stale entries are simply never read again.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(paths: Sequence[str | Path], spec: GridSpec) -> str:
        h = hashlib.sha256(spec.key.encode())
        for p in paths:
            st = os.stat(p)
            h.update(f"\0{Path(p).resolve()}\0{st.st_mtime_ns}\0{st.st_size}".encode())
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key: str, spec: GridSpec) -> FrameSignature | None:
        """The cached signature under ``key`` (see :meth:`key`), or None (counted as a miss)."""
        try:
            with np.load(self._path(key)) as z:
                pixels = z["cell_pixels"]
                if "hist" in z.files:
                    cum = np.cumsum(z["hist"], axis=0, dtype=_cum_dtype(int(pixels.max())))
                else:  # written before per-bin counts were stored
                    cum = z["cum"]
                sig = FrameSignature(
                    spec=spec,
                    shape=(int(z["shape"][0]), int(z["shape"][1])),
                    channels=int(z["channels"]),
                    cum=cum,
                    cell_pixels=pixels,
                    key=key,
                )
        except (FileNotFoundError, KeyError, ValueError, OSError):
            self.misses += 1
            return None
        self.hits += 1
        return sig

    def put(self, key: str, sig: FrameSignature) -> Path:
        """Store ``sig`` under ``key``; returns the file written."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Per-bin counts rather than cumulative ones: small numbers, mostly zero, so zlib's fastest level
        # packs them smaller than numpy's default did the cumulative counts, in a third of the time
        # (the detector writes one signature a frame).
        hist = np.diff(sig.cum, axis=0, prepend=0)
        arrays = {
            "hist": hist.astype(np.uint8) if int(sig.cell_pixels.max()) <= 255 else hist,
            "cell_pixels": sig.cell_pixels,
            "shape": np.array(sig.shape),
            "channels": np.array(sig.channels),
        }
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as npz:
            for name, a in arrays.items():
                with npz.open(f"{name}.npy", "w") as f:
                    np.lib.format.write_array(f, a, allow_pickle=False)
        # Write then rename so a concurrent reader never sees half a file.
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
        return path


def frame_signature_from_paths(
    paths: Sequence[str | Path], spec: GridSpec, cache: SignatureCache | None = None, *, check_size: bool = True
) -> FrameSignature:
    """Signature of one frame whose channels are the image files ``paths`` (in channel order)."""
    key = SignatureCache.key(paths, spec)
    if cache is not None:
        hit = cache.get(key, spec)
        if hit is not None:
            return hit
    sig = replace(_frame_signature_uncached([str(p) for p in paths], spec, check_size), key=key)
    if cache is not None:
        cache.put(key, sig)
    return sig


def frame_signatures_from_paths(
    frames: Sequence[Sequence[str | Path]],
    spec: GridSpec,
    cache: SignatureCache | None = None,
    *,
    workers: int = 1,
    check_size: bool = True,
    progress: bool = False,
) -> list[FrameSignature]:
    """Signatures of many frames, decoding in ``workers`` threads (the cache, if any, is shared on disk).

    A frame listed more than once (the same files, symlinks resolved: overlapping windows cut from one
    archive share most of their frames) is read once and its signature returned at each place.
    """
    ident = [tuple(os.path.realpath(p) for p in f) for f in frames]
    first: dict[tuple[str, ...], int] = {}
    for i, key in enumerate(ident):
        first.setdefault(key, i)
    if len(first) < len(frames):
        distinct = list(first.values())
        sigs = _frame_signatures_from_paths(
            [frames[i] for i in distinct], spec, cache, workers=workers, check_size=check_size, progress=progress
        )
        by_key = {ident[i]: sig for i, sig in zip(distinct, sigs, strict=True)}
        return [by_key[key] for key in ident]
    return _frame_signatures_from_paths(frames, spec, cache, workers=workers, check_size=check_size, progress=progress)


def _frame_signatures_from_paths(
    frames: Sequence[Sequence[str | Path]],
    spec: GridSpec,
    cache: SignatureCache | None,
    *,
    workers: int,
    check_size: bool,
    progress: bool,
) -> list[FrameSignature]:
    from tqdm import tqdm

    jobs = len(frames)
    if workers <= 1 or jobs <= 1:
        it: Iterable[FrameSignature] = (
            frame_signature_from_paths(f, spec, cache, check_size=check_size) for f in frames
        )
        return list(tqdm(it, total=jobs, desc="signatures", unit="frame", disable=not progress))

    # Threads, not processes: everything heavy here releases the GIL (libdeflate's inflate, the compiled
    # unfilter/histogram kernels, Pillow's decoder), so two threads use two cores with no fork, no pickling of
    # signatures and one load of the compiled kernels; the first thread loading them overlaps the other's
    # inflating.
    # As with worker processes before, each worker has its own cache object on the shared directory (the
    # caller's object counts only its own lookups).
    local = threading.local()

    def one(f: Sequence[str | Path]) -> FrameSignature:
        if cache is not None and not hasattr(local, "cache"):
            local.cache = SignatureCache(cache.directory)
        return frame_signature_from_paths(f, spec, getattr(local, "cache", None), check_size=check_size)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        it = pool.map(one, frames)
        return list(tqdm(it, total=jobs, desc="signatures", unit="frame", disable=not progress))


def window_files(window: str | Path, channels: Sequence[str] = CHANNELS) -> list[list[Path]]:
    """Channel files of a study-layout window directory ``image_1 .. image_K/{channel}.png``, in frame order."""
    root = Path(window)
    if not root.is_dir():
        raise FileNotFoundError(f"window directory {root} does not exist")
    dirs = [d for d in root.iterdir() if d.is_dir() and d.name.startswith("image_") and d.name[6:].isdigit()]
    if not dirs:
        raise FileNotFoundError(f"{root} holds no image_1 .. image_K folders")
    dirs.sort(key=lambda d: int(d.name[6:]))
    frames = []
    for d in dirs:
        paths = [d / f"{c}.png" for c in channels]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{d} lacks {', '.join(missing)}")
        frames.append(paths)
    return frames


def similarity_from_paths(
    window_a: Sequence[Sequence[str | Path]],
    window_b: Sequence[Sequence[str | Path]],
    spec: GridSpec | None = None,
    cache: SignatureCache | None = None,
    *,
    workers: int = 1,
) -> float:
    """Similarity of two windows given as lists of frames, each a list of channel image files (windows of
    different lengths: see :func:`compare_paths`)."""
    return compare_paths(window_a, window_b, spec, cache, workers=workers).similarity


def compare_paths(
    window_a: Sequence[Sequence[str | Path]],
    window_b: Sequence[Sequence[str | Path]],
    spec: GridSpec | None = None,
    cache: SignatureCache | None = None,
    *,
    workers: int = 1,
) -> WindowComparison:
    """:func:`similarity_from_paths` with the number of frames compared. Windows of different lengths are
    compared on their latest ``min(len(a), len(b))`` frames (only those are read)."""
    spec = spec or GridSpec()
    k = min(len(window_a), len(window_b))
    if k < 1:
        raise ValueError("a window needs at least one frame")
    fa, fb = list(window_a)[-k:], list(window_b)[-k:]
    sigs = frame_signatures_from_paths([*fa, *fb], spec, cache, workers=workers)
    sim = window_similarity(window_signature(sigs[:k]), window_signature(sigs[k:]))
    return WindowComparison(sim, k, len(window_a), len(window_b))
