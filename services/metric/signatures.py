"""A frame's signature: per-cell cumulative bin counts, from planes or from PNG files, in seed or general layout."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numba
import numpy as np
from PIL import Image, ImageChops

from satwatch.services.frames.pngfast import decode_png, seed_histogram_png
from satwatch.services.metric.binning import (
    _grey_rgb_bin_table,
    _grey_table,
    _uint8_bin_table,
    bin_values,
    grey_from_rgb,
    rgb_bins,
)
from satwatch.services.metric.seedpng import rgb_seed_histogram_png
from satwatch.services.metric.spec import (
    GREY_WEIGHTS,
    LANES,
    SEED_HEIGHT,
    SEED_WIDTH,
    FrameSignature,
    GridSpec,
    ImageSizeError,
)

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
    for _, counts, pl in items:
        if pl is not None:
            counts, pixels = grid_histograms(pl[0], spec, pl[1])
        assert counts is not None
        hists.append(counts)
    h, w = items[0][0]
    if pixels is None:
        ch, cw = seed_cell_size(h, w, spec.n)
        pixels = np.full(spec.cells, ch * cw, dtype=np.int64)
    return _signature_from_counts(hists, pixels, (h, w), spec)
