"""The fused colour-aware seed histogram equals decoding, binning and walking the image separately."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satwatch.services.metric.groundtruth import (
    GREY_WEIGHTS,
    GridSpec,
    _grey_rgb_bin_table,
    grid_histograms,
    rgb_bins,
)
from satwatch.services.metric.seedpng import rgb_seed_histogram_png
from tests.helpers import shared_data


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _filtered_row(ft: int, cur: np.ndarray, up: np.ndarray) -> bytes:
    """One RGB scanline filtered with type ``ft`` (PNG specification, 3 bytes per pixel)."""
    out = bytearray([ft])
    for i in range(len(cur)):
        a = int(cur[i - 3]) if i >= 3 else 0
        b = int(up[i])
        c = int(up[i - 3]) if i >= 3 else 0
        pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][ft]
        out.append((int(cur[i]) - pred) & 255)
    return bytes(out)


def write_png_with_filters(path: Path, rgb: np.ndarray, filters: list[int]) -> Path:
    """An 8-bit RGB PNG whose row r uses filter ``filters[r % len(filters)]``."""
    h, w, _ = rgb.shape
    rows = rgb.reshape(h, 3 * w)
    zero = np.zeros(3 * w, dtype=np.uint8)
    raw = b"".join(_filtered_row(filters[r % len(filters)], rows[r], rows[r - 1] if r else zero) for r in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


def _mostly_grey(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    grey = rng.integers(0, 256, (h, w), dtype=np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    # Coloured pixels: a few scattered ones, a yellow line (R = G != B) and a block.
    for _ in range(max(1, h * w // 60)):
        rgb[rng.integers(0, h), rng.integers(0, w)] = rng.integers(0, 256, 3)
    rgb[h // 2, :, 2] = 0
    rgb[1:4, w - 5 : w - 1] = rng.integers(0, 256, (3, 4, 3))
    return rgb


def _expected(rgb: np.ndarray, n: int, bins: int) -> np.ndarray:
    counts, _ = grid_histograms(rgb_bins(rgb, bins), GridSpec(n, bins, "seed"))
    return counts


@pytest.mark.parametrize("filters", [[0], [1], [2], [3], [4], [4, 2, 0, 3, 1, 4, 4]])
def test_every_filter_type_with_grey_and_coloured_pixels(tmp_path: Path, filters: list[int]) -> None:
    rng = np.random.default_rng(sum(filters) + len(filters))
    h, w = 29, 37  # N=5: cells 6 rows x 8 columns, 3 columns wrap into the next row, 1 row of zeros
    rgb = _mostly_grey(rng, h, w)
    path = write_png_with_filters(tmp_path / "f.png", rgb, filters)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), rgb)  # the writer is right
    for n, bins in [(5, 20), (3, 7), (8, 255), (1, 1), (12, 33)]:
        got = rgb_seed_histogram_png(path, n, bins, _grey_rgb_bin_table(bins), GREY_WEIGHTS)
        assert got is not None
        assert got[0] == (h, w)
        np.testing.assert_array_equal(got[1], _expected(rgb, n, bins))


def test_grey_as_rgb_file_and_other_kinds(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    grey = rng.integers(0, 256, (23, 31), dtype=np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    path = write_png_with_filters(tmp_path / "g.png", rgb, [4, 2, 1])
    got = rgb_seed_histogram_png(path, 4, 20, _grey_rgb_bin_table(20), GREY_WEIGHTS)
    assert got is not None
    np.testing.assert_array_equal(got[1], _expected(rgb, 4, 20))
    # Grey PNGs, alpha, and a grid whose wrap would run past the next row: left to the general reader.
    Image.fromarray(grey, mode="L").save(tmp_path / "l.png")
    Image.fromarray(np.dstack([rgb, grey]), mode="RGBA").save(tmp_path / "a.png")
    assert rgb_seed_histogram_png(tmp_path / "l.png", 4, 20, _grey_rgb_bin_table(20), GREY_WEIGHTS) is None
    assert rgb_seed_histogram_png(tmp_path / "a.png", 4, 20, _grey_rgb_bin_table(20), GREY_WEIGHTS) is None
    assert rgb_seed_histogram_png(path, 70, 20, _grey_rgb_bin_table(20), GREY_WEIGHTS) is None  # 70 cells of 1 px


@pytest.mark.parametrize("n,bins", [(24, 20), (7, 33)])
def test_real_frames(n: int, bins: int) -> None:
    raw = shared_data("study", "raw_images")
    for channel in ("ir01", "wv"):
        path = raw / "201103031315_image" / f"coms_mi_le1b_{channel}_ea040ps_201103031315.png"
        rgb = np.asarray(Image.open(path).convert("RGB"))
        assert rgb.shape == (1300, 1500, 3) and not (rgb[..., 0] == rgb[..., 2]).all()  # colour overlays
        got = rgb_seed_histogram_png(path, n, bins, _grey_rgb_bin_table(bins), GREY_WEIGHTS)
        assert got is not None and got[0] == (1300, 1500)
        np.testing.assert_array_equal(got[1], _expected(rgb, n, bins))
