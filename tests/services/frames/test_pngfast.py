"""The fast PNG path of the ground-truth metric gives Pillow's pixels byte for byte, or steps aside."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satwatch.services.frames.pngfast import _paeth, decode_png, read_png_raw
from satwatch.services.metric import groundtruth as gt

H, W = 37, 29  # odd sizes: rows of any length, no alignment luck


def _grey_image(rng: np.random.Generator, kind: str) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    if kind == "smooth":  # Pillow picks Paeth/Up/Sub here
        return np.clip(128 + 90 * np.sin(xx / 5.0) * np.cos(yy / 7.0), 0, 255).astype(np.uint8)
    if kind == "noise":
        return rng.integers(0, 256, (H, W), dtype=np.uint8)
    if kind == "flat":  # None filter
        return np.full((H, W), 77, dtype=np.uint8)
    return np.clip((xx * 9 + yy * 3) % 256, 0, 255).astype(np.uint8)  # ramps


def _pillow(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _filter_types(path: Path) -> set[int]:
    parsed = read_png_raw(path)
    assert parsed is not None
    h, w, colour, raw = parsed
    rb = w * (3 if colour == 2 else 1) + 1
    return set(raw.reshape(h, rb)[:, 0].tolist())


@pytest.mark.parametrize("level", [0, 1, 6, 9])
@pytest.mark.parametrize("kind", ["smooth", "noise", "flat", "ramp"])
def test_grey_as_rgb_png_written_by_pillow(tmp_path: Path, level: int, kind: str) -> None:
    g = _grey_image(np.random.default_rng(level), kind)
    path = tmp_path / "g.png"
    Image.fromarray(np.repeat(g[:, :, None], 3, axis=2), mode="RGB").save(path, compress_level=level)
    got = decode_png(path)
    assert got is not None
    plane, grey = got
    assert grey
    assert plane.dtype == np.uint8 and plane.shape == (H, W)
    assert np.array_equal(plane, _pillow(path)[:, :, 0])


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize("kind", ["smooth", "noise", "ramp"])
def test_grey_png_written_by_pillow(tmp_path: Path, level: int, kind: str) -> None:
    g = _grey_image(np.random.default_rng(10 + level), kind)
    path = tmp_path / "l.png"
    Image.fromarray(g, mode="L").save(path, compress_level=level)
    got = decode_png(path)
    assert got is not None and got[1]
    with Image.open(path) as im:
        assert np.array_equal(got[0], np.asarray(im))


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize("colour_from_row", [0, 1, H // 2, H - 1])
def test_true_colour_png_written_by_pillow(tmp_path: Path, level: int, colour_from_row: int) -> None:
    """Grey-as-RGB down to some row, colour below: the grey fast path must notice and hand over."""
    rng = np.random.default_rng(colour_from_row)
    g = _grey_image(rng, "smooth")
    rgb = np.repeat(g[:, :, None], 3, axis=2)
    rgb[colour_from_row:, :, 1] = rng.integers(0, 256, (H - colour_from_row, W), dtype=np.uint8)
    rgb[-1, -1] = (1, 2, 3)  # at least one coloured pixel, the very last
    path = tmp_path / "c.png"
    Image.fromarray(rgb, mode="RGB").save(path, compress_level=level)
    got = decode_png(path)
    assert got is not None
    pixels, grey = got
    assert not grey
    assert np.array_equal(pixels, _pillow(path))


def test_pillow_writes_several_filter_types(tmp_path: Path) -> None:
    """The Pillow-written cases above do exercise more than one row filter."""
    seen: set[int] = set()
    for kind in ("smooth", "noise", "flat", "ramp"):
        path = tmp_path / f"{kind}.png"
        g = _grey_image(np.random.default_rng(0), kind)
        Image.fromarray(np.repeat(g[:, :, None], 3, axis=2), mode="RGB").save(path, compress_level=6)
        seen |= _filter_types(path)
    assert len(seen) >= 3


# --- PNGs written here, with every row filter chosen on purpose --------------------------------------------


def _paeth_py(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _filter_rows(img: np.ndarray, bpp: int, types: list[int]) -> bytes:
    """Scanlines of ``img`` (H, rowbytes) filtered with ``types[r]`` on row r, as a PNG encoder would."""
    h, rb = img.shape
    out = bytearray()
    prev = np.zeros(rb, dtype=np.int64)
    for r in range(h):
        cur = img[r].astype(np.int64)
        left = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        ft = types[r]
        if ft == 0:
            pred = np.zeros(rb, np.int64)
        elif ft == 1:
            pred = left
        elif ft == 2:
            pred = prev
        elif ft == 3:
            pred = (left + prev) // 2
        else:
            pred = np.array([_paeth_py(int(a), int(b), int(c)) for a, b, c in zip(left, prev, upleft, strict=True)])
        out.append(ft)
        out += ((cur - pred) % 256).astype(np.uint8).tobytes()
        prev = cur
    return bytes(out)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _write_png(
    path: Path,
    img: np.ndarray,
    colour: int,
    types: list[int],
    *,
    depth: int = 8,
    interlace: int = 0,
    extra: list[bytes] | None = None,
    idat_pieces: int = 3,
    level: int = 6,
) -> None:
    h = img.shape[0]
    w = img.shape[1] if img.ndim == 2 else img.shape[1]
    bpp = 3 if colour == 2 else 1
    data = zlib.compress(_filter_rows(img.reshape(h, -1), bpp, types), level)
    step = -(-len(data) // idat_pieces)
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace))]
    chunks += extra or []
    chunks += [_chunk(b"IDAT", data[i : i + step]) for i in range(0, len(data), step)]
    chunks.append(_chunk(b"IEND", b""))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))


@pytest.mark.parametrize("rgb", [False, True])
@pytest.mark.parametrize("level", [0, 1, 9])
@pytest.mark.parametrize("pattern", ["each", "cycle", "paeth-first"])
def test_every_filter_type_matches_pillow(tmp_path: Path, rgb: bool, level: int, pattern: str) -> None:
    rng = np.random.default_rng(level)
    g = _grey_image(rng, "smooth") ^ (rng.integers(0, 4, (H, W), dtype=np.uint8))
    if pattern == "each":  # runs of one filter each, the first row included
        types = [min(r // 8, 4) for r in range(H)]
    elif pattern == "cycle":
        types = [r % 5 for r in range(H)]
    else:  # Up, Average and Paeth on the first row (nothing above), then random
        types = [4, 3, 2] + rng.integers(0, 5, H - 3).tolist()
    path = tmp_path / "f.png"
    if rgb:
        _write_png(path, np.repeat(g[:, :, None], 3, axis=2), 2, types, level=level)
    else:
        _write_png(path, g, 0, types, level=level)
    assert _filter_types(path) == set(types)
    got = decode_png(path)
    assert got is not None and got[1]
    assert np.array_equal(got[0], _pillow(path)[:, :, 0])
    # The same rows in colour take the full RGB unfilter.
    col = np.stack([g, np.roll(g, 3, axis=1), 255 - g], axis=2)
    _write_png(path, col, 2, types, level=level)
    got = decode_png(path)
    assert got is not None and not got[1]
    assert np.array_equal(got[0], _pillow(path))


def test_paeth_kernel_matches_the_spec() -> None:
    vals = [0, 1, 2, 7, 100, 128, 200, 254, 255]
    for a in vals:
        for b in vals:
            for c in vals:
                assert _paeth(np.int32(a), np.int32(b), np.int32(c)) == _paeth_py(a, b, c)


# --- anything unusual goes to Pillow ----------------------------------------------------------------------


def _pillow_case(tmp_path: Path, case: str) -> Path:
    g = _grey_image(np.random.default_rng(3), "smooth")
    path = tmp_path / f"{case}.png"
    if case == "palette":
        Image.fromarray(g, mode="L").convert("P").save(path)
    elif case == "16-bit":
        Image.fromarray(g.astype(np.uint16) * 257).save(path)
    elif case == "rgba":
        Image.fromarray(np.dstack([g, g, g, 255 - g]), mode="RGBA").save(path)
    elif case == "grey-alpha":
        Image.fromarray(np.dstack([g, 255 - g]), mode="LA").save(path)
    elif case == "1-bit":
        Image.fromarray(g > 128).save(path)
    elif case == "interlaced":
        types = [0] * H
        _write_png(path, np.repeat(g[:, :, None], 3, axis=2), 2, types, interlace=1)
    elif case == "transparency":
        Image.fromarray(np.repeat(g[:, :, None], 3, axis=2), mode="RGB").save(path, transparency=(77, 77, 77))
    elif case == "grey-transparency":
        Image.fromarray(g, mode="L").save(path, transparency=77)
    elif case == "truncated":
        Image.fromarray(np.repeat(g[:, :, None], 3, axis=2), mode="RGB").save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "not-png":
        Image.fromarray(g, mode="L").save(path, format="BMP")
    elif case == "bad-filter":
        _write_png(path, g, 0, [0] * H)
        parsed = read_png_raw(path)
        assert parsed is not None
        raw = bytearray(parsed[3].tobytes())
        raw[(W + 1) * 5] = 7  # row 5 claims filter type 7
        data = zlib.compress(bytes(raw))
        head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 0, 0, 0, 0))
        path.write_bytes(head + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(
    "case",
    [
        "palette",
        "16-bit",
        "rgba",
        "grey-alpha",
        "1-bit",
        "interlaced",
        "transparency",
        "grey-transparency",
        "truncated",
        "not-png",
        "bad-filter",
    ],
)
def test_unusual_files_are_left_to_pillow(tmp_path: Path, case: str) -> None:
    path = _pillow_case(tmp_path, case)
    assert decode_png(path) is None


@pytest.mark.parametrize("case", ["palette", "16-bit", "rgba", "grey-alpha", "1-bit", "transparency", "not-png"])
def test_metric_reads_unusual_files_through_pillow(tmp_path: Path, case: str) -> None:
    path = _pillow_case(tmp_path, case)
    values, lut = gt._read_plane(str(path), 20)
    ref_values, ref_lut = gt._read_plane_pillow(str(path), 20)
    assert np.array_equal(values, ref_values)
    assert (lut is None) == (ref_lut is None)


@pytest.mark.parametrize("colour", [False, True])
def test_metric_planes_equal_the_pillow_route(tmp_path: Path, colour: bool) -> None:
    """The signature of a frame is the same whichever decoder read its files."""
    rng = np.random.default_rng(5)
    paths = []
    for c in range(2):
        g = _grey_image(rng, "smooth" if c else "noise")
        rgb = np.repeat(g[:, :, None], 3, axis=2)
        if colour:
            rgb[:, :, 2] = 255 - g
        p = tmp_path / f"ch{c}.png"
        Image.fromarray(rgb, mode="RGB").save(p, compress_level=1)
        paths.append(str(p))
    spec = gt.GridSpec(n=4, bins=20, mode="general")
    fast = [gt._read_plane(p, spec.bins) for p in paths]
    slow = [gt._read_plane_pillow(p, spec.bins) for p in paths]
    for (v1, l1), (v2, l2) in zip(fast, slow, strict=True):
        assert np.array_equal(v1, v2)
        assert (l1 is None and l2 is None) or np.array_equal(l1, l2)
    s1 = gt._signature_from_planes(fast, spec)
    s2 = gt._signature_from_planes(slow, spec)
    assert np.array_equal(s1.cum, s2.cum)


@pytest.mark.parametrize(
    ("h", "w", "n"),
    [(37, 29, 4), (40, 30, 5), (45, 26, 6), (9, 3, 4), (12, 3, 8), (63, 55, 24), (150, 130, 24), (11, 7, 1)],
)
@pytest.mark.parametrize("types", ["pillow", "mixed"])
def test_fused_seed_histogram_equals_the_plane_walk(tmp_path: Path, h: int, w: int, n: int, types: str) -> None:
    """Seed mode reads grey-as-RGB PNGs into bin counts while unfiltering (wrap-around and zeros past the end
    included); the counts equal the walk over Pillow's plane, whatever the grid (small widths where the walk
    wraps further than one row take the plane route)."""
    rng = np.random.default_rng(h * w + n)
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.clip(128 + 100 * np.sin(xx / 3.0 + yy / 5.0) + rng.normal(0, 20, (h, w)), 0, 255).astype(np.uint8)
    g[0, 0], g[-1, -1] = 255, 0
    rgb = np.repeat(g[:, :, None], 3, axis=2)
    paths = []
    for c in range(2):
        path = tmp_path / f"ch{c}.png"
        if types == "pillow":
            Image.fromarray(np.roll(rgb, c, axis=0), mode="RGB").save(path, compress_level=1 + 5 * c)
        else:
            _write_png(path, np.roll(rgb, c, axis=1), 2, rng.integers(0, 5, h).tolist())
        paths.append(str(path))
    spec = gt.GridSpec(n=n, bins=20, mode="seed")
    fast = gt._frame_signature_uncached(paths, spec, check_size=False)
    slow = gt._signature_from_planes([gt._read_plane_pillow(p, spec.bins) for p in paths], spec)
    assert fast.shape == slow.shape == (h, w)
    assert np.array_equal(fast.cell_pixels, slow.cell_pixels)
    assert np.array_equal(fast.cum, slow.cum)


def test_seed_mode_mixes_fused_and_plane_channels(tmp_path: Path) -> None:
    """One grey-as-RGB channel (fused counts) beside a colour one (plane walk) in the same frame."""
    rng = np.random.default_rng(9)
    g = rng.integers(0, 256, (H, W), dtype=np.uint8)
    grey_path, colour_path = tmp_path / "g.png", tmp_path / "c.png"
    Image.fromarray(np.repeat(g[:, :, None], 3, axis=2), mode="RGB").save(grey_path)
    Image.fromarray(np.dstack([g, 255 - g, g // 2]), mode="RGB").save(colour_path)
    paths = [str(grey_path), str(colour_path)]
    spec = gt.GridSpec(n=5, bins=20, mode="seed")
    fast = gt._frame_signature_uncached(paths, spec, check_size=False)
    slow = gt._signature_from_planes([gt._read_plane_pillow(p, spec.bins) for p in paths], spec)
    assert np.array_equal(fast.cum, slow.cum)
    with pytest.raises(gt.ImageSizeError):
        gt._frame_signature_uncached(paths, spec, check_size=True)
