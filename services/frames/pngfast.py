"""A narrow, fast PNG reader for the ground-truth metric: 8-bit grey or RGB, non-interlaced, nothing else.

KMA's COMS frames (and the simulator's) are 8-bit RGB PNGs whose pixels have R = G = B. For those the
metric needs only one 8-bit plane. This reader parses the chunks itself, inflates the IDAT stream with
libdeflate (the ``deflate`` package; its output size is known from IHDR) and undoes the PNG row filters in
one compiled pass. PNG filters act on each byte with the same byte of the pixel to the left and of the row
above, so a row whose *filtered* bytes have R = G = B for every pixel unfilters to R = G = B as well (given
the row above does), and only the red bytes need unfiltering. The first pixel that differs sends the image
down the full RGB unfilter instead.

Anything unusual (palette, 16-bit, fewer than 8 bits, alpha, transparency chunk, interlacing, a damaged or
truncated stream, not a PNG at all) returns ``None`` so the caller falls back to Pillow. What it does
return equals, byte for byte, what Pillow decodes (``tests/services/frames/test_pngfast.py``).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numba
import numpy as np

try:  # libdeflate: about 3x faster than zlib at inflating
    from deflate import DeflateError
    from deflate import zlib_decompress as _libdeflate_zlib

    HAVE_LIBDEFLATE = True
    _InflateError: type[Exception] = DeflateError
except ImportError:  # pragma: no cover - the package is a dependency; zlib keeps the reader working
    HAVE_LIBDEFLATE = False
    _InflateError = zlib.error

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Colour types read here: 0 = grey, 2 = RGB (8 bits each); everything else goes to Pillow.
GREY, RGB = 0, 2


def _inflate(data: bytes, size: int) -> np.ndarray | None:
    """The zlib stream ``data`` inflated to exactly ``size`` bytes, or None."""
    try:
        if HAVE_LIBDEFLATE:
            out: bytes | bytearray = _libdeflate_zlib(data, size + 1)  # room for one byte more: catches long streams
        else:  # pragma: no cover
            out = zlib.decompress(data)
    except (_InflateError, zlib.error, ValueError):
        return None
    if len(out) != size:
        return None
    return np.frombuffer(out, dtype=np.uint8)


def read_png_raw(path: str | Path) -> tuple[int, int, int, np.ndarray] | None:
    """(height, width, colour type, inflated filtered scanlines) of a plain 8-bit grey or RGB PNG, else None."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:8] != PNG_SIGNATURE:
        return None
    view = memoryview(data)
    pos = 8
    header = None
    idat: list[memoryview] = []
    end = len(data)
    while pos + 8 <= end:
        length, ctype = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if body + length + 4 > end:
            return None
        if ctype == b"IHDR":
            if length != 13:
                return None
            header = struct.unpack_from(">IIBBBBB", data, body)
        elif ctype == b"IDAT":
            idat.append(view[body : body + length])
        elif ctype == b"IEND":
            break
        elif ctype in (b"tRNS", b"PLTE"):
            return None  # transparency or a palette: leave the conversion to Pillow
        pos = body + length + 4
    if header is None or not idat:
        return None
    width, height, depth, colour, compression, filtering, interlace = header
    if depth != 8 or colour not in (GREY, RGB) or compression or filtering or interlace:
        return None
    if width < 1 or height < 1:
        return None
    bpp = 3 if colour == RGB else 1
    raw = _inflate(b"".join(idat), height * (1 + width * bpp))
    if raw is None:
        return None
    return height, width, colour, raw


@numba.njit(cache=True, nogil=True, inline="always")
def _paeth(a, b, c):  # pragma: no cover - compiled
    p = a + b - c
    pa = abs(p - a)
    pb = abs(p - b)
    pc = abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    if pb <= pc:
        return b
    return c


@numba.njit(cache=True, nogil=True)
def _unfilter(raw: np.ndarray, h: int, rb: int, bpp: int, out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Undo the row filters of ``h`` scanlines of ``rb`` bytes (``bpp`` bytes per pixel) into ``out`` (h, rb).

    Returns False on an unknown filter type."""
    stride = rb + 1
    for r in range(h):
        ft = raw[r * stride]
        src = raw[r * stride + 1 : (r + 1) * stride]
        cur = out[r]
        if ft == 0 or (ft == 2 and r == 0):
            for x in range(rb):
                cur[x] = src[x]
        elif ft == 1:
            for x in range(bpp):
                cur[x] = src[x]
            for x in range(bpp, rb):
                cur[x] = np.uint8((np.int32(src[x]) + np.int32(cur[x - bpp])) & 255)
        elif ft == 2:
            up = out[r - 1]
            for x in range(rb):
                cur[x] = np.uint8((np.int32(src[x]) + np.int32(up[x])) & 255)
        elif ft == 3:
            if r == 0:
                for x in range(bpp):
                    cur[x] = src[x]
                for x in range(bpp, rb):
                    cur[x] = np.uint8((np.int32(src[x]) + (np.int32(cur[x - bpp]) >> 1)) & 255)
            else:
                up = out[r - 1]
                for x in range(bpp):
                    cur[x] = np.uint8((np.int32(src[x]) + (np.int32(up[x]) >> 1)) & 255)
                for x in range(bpp, rb):
                    cur[x] = np.uint8((np.int32(src[x]) + ((np.int32(cur[x - bpp]) + np.int32(up[x])) >> 1)) & 255)
        elif ft == 4:
            if r == 0:  # Paeth with no row above is Sub
                for x in range(bpp):
                    cur[x] = src[x]
                for x in range(bpp, rb):
                    cur[x] = np.uint8((np.int32(src[x]) + np.int32(cur[x - bpp])) & 255)
            else:
                up = out[r - 1]
                for x in range(bpp):
                    cur[x] = np.uint8((np.int32(src[x]) + np.int32(up[x])) & 255)
                for x in range(bpp, rb):
                    pred = _paeth(np.int32(cur[x - bpp]), np.int32(up[x]), np.int32(up[x - bpp]))
                    cur[x] = np.uint8((np.int32(src[x]) + pred) & 255)
        else:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _unfilter_red_if_grey(raw: np.ndarray, h: int, w: int, out: np.ndarray) -> int:  # pragma: no cover - compiled
    """Unfilter only the red bytes of an RGB image into ``out`` (h, w) while every filtered pixel has R = G = B.

    Returns 1 when the whole image is grey-as-RGB (``out`` then holds it), 0 at the first row with a
    coloured pixel, -1 on an unknown filter type.
    """
    stride = 3 * w + 1
    for r in range(h):
        base = r * stride
        src = raw[base + 1 : base + stride]
        if not _grey_row(src, w):
            return 0
        # Row 0 never reads the row above (_red_row treats its filters as having a zero row above).
        if not _red_row(raw[base], r, src, out[r - 1] if r > 0 else out[0], out[r], w):
            return -1
    return 1


@numba.njit(cache=True, nogil=True, inline="always")
def _grey_row(src: np.ndarray, w: int) -> bool:  # pragma: no cover - compiled
    """Every filtered pixel of this RGB scanline has R = G = B."""
    diff = 0
    for x in range(w):
        v = src[3 * x]
        diff |= (v ^ src[3 * x + 1]) | (v ^ src[3 * x + 2])
    return diff == 0


@numba.njit(cache=True, nogil=True, inline="always")
def _red_row(ft: int, r: int, src: np.ndarray, up: np.ndarray, cur: np.ndarray, w: int) -> bool:  # pragma: no cover
    """Unfilter the red bytes of one grey-as-RGB scanline; False on an unknown filter type."""
    if ft == 0 or (ft == 2 and r == 0):
        for x in range(w):
            cur[x] = src[3 * x]
    elif ft == 1 or (ft == 4 and r == 0):
        left = np.int32(0)
        for x in range(w):
            left = (np.int32(src[3 * x]) + left) & 255
            cur[x] = np.uint8(left)
    elif ft == 2:
        for x in range(w):
            cur[x] = np.uint8((np.int32(src[3 * x]) + np.int32(up[x])) & 255)
    elif ft == 3:
        left = np.int32(0)
        if r == 0:
            for x in range(w):
                left = (np.int32(src[3 * x]) + (left >> 1)) & 255
                cur[x] = np.uint8(left)
        else:
            for x in range(w):
                left = (np.int32(src[3 * x]) + ((left + np.int32(up[x])) >> 1)) & 255
                cur[x] = np.uint8(left)
    elif ft == 4:
        left = np.int32(0)
        upleft = np.int32(0)
        for x in range(w):
            above = np.int32(up[x])
            left = (np.int32(src[3 * x]) + _paeth(left, above, upleft)) & 255
            upleft = above
            cur[x] = np.uint8(left)
    else:
        return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _paeth_red_rows(
    s0: np.ndarray, s1: np.ndarray, up: np.ndarray, c0: np.ndarray, c1: np.ndarray, w: int
) -> None:  # pragma: no cover - compiled
    """Two consecutive Paeth rows (not the first of the image) at once: the second runs one pixel behind the
    first, so the two dependency chains (each pixel waits for its left neighbour) overlap."""
    left0 = np.int32(0)
    upleft0 = np.int32(0)
    left1 = np.int32(0)
    upleft1 = np.int32(0)
    for x in range(w):
        above1 = left0  # first row's pixel x - 1 (0 before the row starts; unused then)
        above0 = np.int32(up[x])
        left0 = (np.int32(s0[3 * x]) + _paeth(left0, above0, upleft0)) & 255
        upleft0 = above0
        c0[x] = np.uint8(left0)
        if x > 0:
            left1 = (np.int32(s1[3 * (x - 1)]) + _paeth(left1, above1, upleft1)) & 255
            upleft1 = above1
            c1[x - 1] = np.uint8(left1)
    left1 = (np.int32(s1[3 * (w - 1)]) + _paeth(left1, left0, upleft1)) & 255
    c1[w - 1] = np.uint8(left1)


@numba.njit(cache=True, nogil=True, inline="always")
def _seed_row_hist(
    r: int,
    cur: np.ndarray,
    counts: np.ndarray,
    part: np.ndarray,
    colcell: np.ndarray,
    lut: np.ndarray,
    n: int,
    ch: int,
    cw: int,
    w: int,
    extra: int,
    rows: int,
) -> None:  # pragma: no cover - compiled
    """Count row r of the seed walk. Its own pixels go to ``part`` (4, n, bins+1): four partial histograms of
    the current cell row taken in turn, so neighbouring pixels (often of one bin) do not wait on each other's
    increments; :func:`_flush` adds them to ``counts``. The wrapped head goes to ``counts`` directly."""
    if r < rows:  # row r as virtual row r of the seed walk
        x = 0
        while x + 4 <= w:
            part[0, colcell[x], lut[cur[x]]] += 1
            part[1, colcell[x + 1], lut[cur[x + 1]]] += 1
            part[2, colcell[x + 2], lut[cur[x + 2]]] += 1
            part[3, colcell[x + 3], lut[cur[x + 3]]] += 1
            x += 4
        while x < w:
            part[0, colcell[x], lut[cur[x]]] += 1
            x += 1
    if 1 <= r <= rows:  # the head of row r, wrapped into virtual row r - 1
        cells = counts[((r - 1) // ch) * n : ((r - 1) // ch + 1) * n]
        for k in range(extra):
            cells[(w + k) // cw, lut[cur[k]]] += 1


@numba.njit(cache=True, nogil=True, inline="always")
def seed_zero_tail(
    counts: np.ndarray,
    colcell: np.ndarray,
    zero: int,
    h: int,
    rows: int,
    n: int,
    ch: int,
    cw: int,
    w: int,
    extra: int,
) -> None:  # pragma: no cover - compiled
    """The seed walk past an image of ``h`` rows, into bin ``zero``: the wrap of the last image row (its
    ``extra`` pixels read zeros), then whole virtual rows of zeros up to ``rows`` (n * cell height)."""
    for v in range(h - 1, rows):
        cells = counts[(v // ch) * n : (v // ch + 1) * n]
        if v >= h:
            for x in range(w):
                cells[colcell[x], zero] += 1
        for k in range(extra):
            cells[(w + k) // cw, zero] += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _flush(part: np.ndarray, counts: np.ndarray, cell_row: int, n: int) -> None:  # pragma: no cover - compiled
    if cell_row < 0:
        return
    nb = part.shape[2]
    for j in range(n):
        for b in range(nb):
            counts[cell_row * n + j, b] += part[0, j, b] + part[1, j, b] + part[2, j, b] + part[3, j, b]
            part[0, j, b] = 0
            part[1, j, b] = 0
            part[2, j, b] = 0
            part[3, j, b] = 0


@numba.njit(cache=True, nogil=True)
def _unfilter_red_hist_seed(
    raw: np.ndarray, h: int, w: int, n: int, ch: int, cw: int, lut: np.ndarray, counts: np.ndarray
) -> int:  # pragma: no cover - compiled
    """:func:`_unfilter_red_if_grey` fused with the seed walk's histogram, without keeping the image.

    ``counts`` (n*n, bins+1) int64 receives what ``groundtruth._hist_seed`` computes from the red plane:
    virtual row ``v`` of the walk (cell row ``v // ch``) reads image row v and then the first
    ``n*cw - w`` pixels of row v+1 (the wrap-around into the next row, into cells ``(w + k) // cw``), and
    zeros past the last row. Requires ``n*cw - w <= w``. Returns 1, 0 (a coloured pixel: counts are
    incomplete) or -1 (unknown filter type).
    """
    stride = 3 * w + 1
    extra = n * cw - w
    rows = n * ch
    buf = np.zeros((3, w), dtype=np.uint8)  # rows r - 1, r, r + 1 in turn
    colcell = np.empty(w, dtype=np.int64)
    for c in range(w):
        colcell[c] = c // cw
    part = np.zeros((4, n, counts.shape[1]), dtype=np.int32)
    cell_row = -1
    r = 0
    while r < h:
        if r < rows and r // ch != cell_row:  # r and r + 1 never straddle this (ch >= 2 when pairing, see below)
            _flush(part, counts, cell_row, n)
            cell_row = r // ch
        base = r * stride
        src = raw[base + 1 : base + stride]
        if not _grey_row(src, w):
            return 0
        up = buf[(r + 2) % 3]
        cur = buf[r % 3]
        if r >= 1 and r + 1 < h and raw[base] == 4 and raw[base + stride] == 4 and (r + 1) // ch == cell_row:
            src1 = raw[base + stride + 1 : base + 2 * stride]
            if not _grey_row(src1, w):
                return 0
            nxt = buf[(r + 1) % 3]
            _paeth_red_rows(src, src1, up, cur, nxt, w)
            _seed_row_hist(r, cur, counts, part, colcell, lut, n, ch, cw, w, extra, rows)
            _seed_row_hist(r + 1, nxt, counts, part, colcell, lut, n, ch, cw, w, extra, rows)
            r += 2
            continue
        if not _red_row(raw[base], r, src, up, cur, w):
            return -1
        _seed_row_hist(r, cur, counts, part, colcell, lut, n, ch, cw, w, extra, rows)
        r += 1
    _flush(part, counts, cell_row, n)
    seed_zero_tail(counts, colcell, lut[0], h, rows, n, ch, cw, w, extra)
    return 1


def decode_png(path: str | Path) -> tuple[np.ndarray, bool] | None:
    """Decode a plain 8-bit grey or RGB PNG as Pillow would, or return None (use Pillow then).

    Returns ``(pixels, grey)``: a grey PNG or an RGB PNG whose pixels all have R = G = B gives its one plane
    (H, W) uint8 and ``grey=True``; any other RGB PNG gives (H, W, 3) uint8 and ``grey=False``.
    """
    parsed = read_png_raw(path)
    if parsed is None:
        return None
    return _decode_raw(*parsed)


def _decode_raw(h: int, w: int, colour: int, raw: np.ndarray) -> tuple[np.ndarray, bool] | None:
    if colour == GREY:
        plane = np.empty((h, w), dtype=np.uint8)
        return (plane, True) if _unfilter(raw, h, w, 1, plane) else None
    plane = np.empty((h, w), dtype=np.uint8)
    status = _unfilter_red_if_grey(raw, h, w, plane)
    if status < 0:
        return None
    if status == 1:
        return plane, True
    rgb = np.empty((h, 3 * w), dtype=np.uint8)
    if not _unfilter(raw, h, 3 * w, 3, rgb):
        return None
    return rgb.reshape(h, w, 3), False


def seed_histogram_png(
    path: str | Path, n: int, nb: int, lut: np.ndarray
) -> tuple[tuple[int, int], np.ndarray | None, np.ndarray | None, bool] | None:
    """Read a PNG for the seed walk: ``(shape, counts, pixels, grey)``, or None (use Pillow).

    For an RGB PNG whose pixels all have R = G = B (and a grid whose wrap-around stays within one row),
    ``counts`` (n*n, nb) is the seed walk's histogram of the red plane through ``lut``, computed
    while unfiltering, and ``pixels`` is None. Otherwise ``counts`` is None and ``pixels``/``grey`` are
    what :func:`decode_png` returns.
    """
    parsed = read_png_raw(path)
    if parsed is None:
        return None
    h, w, colour, raw = parsed
    ch, cw = -(-h // n), -(-w // n)
    if colour == RGB and n * cw - w <= w:
        counts = np.zeros((n * n, nb), dtype=np.int64)
        status = _unfilter_red_hist_seed(raw, h, w, n, ch, cw, lut, counts)
        if status < 0:
            return None
        if status == 1:
            return (h, w), counts, None, True
    decoded = _decode_raw(h, w, colour, raw)
    if decoded is None:
        return None
    return (h, w), None, decoded[0], decoded[1]
