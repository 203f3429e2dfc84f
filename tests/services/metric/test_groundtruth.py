"""Ground-truth metric: hand-computed cases, the reference's quirks, modes, kernels, cache."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satwatch.services.metric.groundtruth import (
    SEED_HEIGHT,
    SEED_WIDTH,
    GridSpec,
    ImageSizeError,
    SignatureCache,
    aligned,
    bin_values,
    cdf_features,
    cell_similarities,
    compare_one_to_many,
    compare_paths,
    compare_windows,
    frame_signature,
    frame_signature_from_paths,
    frame_signature_from_rgb,
    frame_signatures_from_paths,
    grey_from_rgb,
    latest_frames,
    pairwise_similarity,
    similarity_from_paths,
    similarity_one_to_many,
    window_files,
    window_signature,
    window_similarity,
)
from tests.services.metric.study_program import build_study_program

# --- a literal, loop-by-loop transcription of the described algorithm, used as the oracle ------------


def literal_cells(grey: np.ndarray, n: int, mode: str) -> list[list[float]]:
    """Pixel values of every cell, row-major cells, as the reference (seed) or array_split (general) cuts."""
    h, w = grey.shape
    cells: list[list[float]] = []
    if mode == "seed":
        ch, cw = math.ceil(h / n), math.ceil(w / n)
        flat = grey.ravel()
        for i in range(n):
            for j in range(n):
                vals = []
                for r in range(ch):
                    for c in range(cw):
                        idx = (i * ch + r) * w + j * cw + c
                        vals.append(float(flat[idx]) if idx < h * w else 0.0)
                cells.append(vals)
    else:
        rows = np.array_split(np.arange(h), n)
        cols = np.array_split(np.arange(w), n)
        for rr in rows:
            for cc in cols:
                cells.append([float(grey[r, c]) for r in rr for c in cc])
    return cells


def literal_bin(v: float, bins: int) -> int:
    return int(np.floor(np.float32(v) / np.float32(255.0) * np.float32(bins)))


def literal_ks(a: list[int], b: list[int]) -> float:
    """KS evaluated at the union of the values occurring in either sample."""
    d = 0.0
    for v in sorted(set(a) | set(b)):
        fa = sum(1 for x in a if x <= v) / len(a)
        fb = sum(1 for x in b if x <= v) / len(b)
        d = max(d, abs(fa - fb))
    return d


def literal_window(wa: list[np.ndarray], wb: list[np.ndarray], n: int, bins: int, mode: str) -> float:
    """wa, wb: lists of float32 grey planes (frames x channels flattened)."""
    total = 0.0
    for ga, gb in zip(wa, wb, strict=True):
        for ca, cb in zip(literal_cells(ga, n, mode), literal_cells(gb, n, mode), strict=True):
            total += 1.0 - literal_ks([literal_bin(v, bins) for v in ca], [literal_bin(v, bins) for v in cb])
    return total / (len(wa) * n * n)


def win(planes: list[np.ndarray], spec: GridSpec, channels: int = 1) -> object:
    """Window signature of grey planes grouped ``channels`` per frame (size check off)."""
    frames = [
        frame_signature(np.stack(planes[k : k + channels]), spec, check_size=False)
        for k in range(0, len(planes), channels)
    ]
    return window_signature(frames)


# --- hand-computed cases ------------------------------------------------------------------------------


def test_2x2_grid_one_cell_fully_different() -> None:
    a = np.zeros((4, 4), np.float32)
    b = a.copy()
    b[:2, :2] = 255.0  # cell (0,0): all bin 0 against all bin 20 -> D = 1
    spec = GridSpec(n=2, bins=20, mode="seed")
    assert window_similarity(win([a], spec), win([b], spec)) == pytest.approx(3 / 4, abs=1e-12)
    cells = cell_similarities(win([a], spec), win([b], spec))  # type: ignore[arg-type]
    assert cells.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(cells[0, 0], [[0.0, 1.0], [1.0, 1.0]])


def test_2x2_grid_half_cell_different() -> None:
    a = np.zeros((4, 4), np.float32)
    b = a.copy()
    b[1, 2:] = 255.0  # cell (0,1): CDF at 0 is 1 vs 1/2 -> D = 0.5
    spec = GridSpec(n=2, bins=20, mode="general")
    assert window_similarity(win([a], spec), win([b], spec)) == pytest.approx((3 + 0.5) / 4, abs=1e-12)


def test_3x3_grid_known_ks() -> None:
    # 6x6 image, 2x2 cells. Cell (1,1) of A holds 0,100,200,255 -> bins 0,1,3,4 (B=4);
    # of B holds 0,0,100,100 -> bins 0,0,1,1. CDFs at {0,1,3,4}: .25/.5, .5/1, .75/1, 1/1 -> D = 0.5.
    a = np.zeros((6, 6), np.float32)
    b = np.zeros((6, 6), np.float32)
    a[2:4, 2:4] = [[0, 100], [200, 255]]
    b[2:4, 2:4] = [[0, 0], [100, 100]]
    # Cell (2,0): A all 255 (bin 4), B all 200 (bin 3) -> D = 1.
    a[4:6, 0:2] = 255
    b[4:6, 0:2] = 200
    for mode in ("seed", "general"):
        spec = GridSpec(n=3, bins=4, mode=mode)  # type: ignore[arg-type]
        expected = (7 + 0.5 + 0.0) / 9
        assert window_similarity(win([a], spec), win([b], spec)) == pytest.approx(expected, abs=1e-12)


def test_bins_computed_in_float32() -> None:
    v = np.array([0, 12.75, 12.7499, 127.5, 254.99, 255.0], np.float32)
    assert list(bin_values(v, 20)) == [literal_bin(float(x), 20) for x in v]
    assert bin_values(np.array([255.0], np.float32), 20)[0] == 20  # 255 lands in bin B
    # float32 rounding lifts 81.6/255*50 (15.99999... exactly) to 16; double arithmetic would give 15.
    assert float(np.float32(81.6)) / 255 * 50 < 16
    assert bin_values(np.array([81.6], np.float32), 50)[0] == 16
    assert list(bin_values(np.arange(256, dtype=np.uint8), 20)) == [literal_bin(x, 20) for x in range(256)]


def test_grey_conversion_matches_double_then_float32() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    expected = np.array(
        [[np.float32(0.2989 * p[0] + 0.5870 * p[1] + 0.1140 * p[2]) for p in row] for row in rgb.astype(float)]
    )
    np.testing.assert_array_equal(grey_from_rgb(rgb), expected)
    # Grey stored as RGB takes the table path: white is 0.9999 * 255, so it falls in bin 19, not 20.
    white = np.full((2, 2, 3), 255, np.uint8)
    assert grey_from_rgb(white)[0, 0] == np.float32(0.2989 * 255 + 0.5870 * 255 + 0.1140 * 255)
    assert bin_values(grey_from_rgb(white), 20)[0, 0] == 19


# --- quirks of the seed walk --------------------------------------------------------------------------


def test_seed_cell_past_right_edge_reads_next_row() -> None:
    # 4 rows x 5 cols, N=2: cells 2x3. Cell (0,1) covers flat 3,4,5 and 8,9,10: flat 5 is pixel (1,0).
    g = np.zeros((4, 5), np.float32)
    g[1, 0] = 255.0
    seed = frame_signature(g, GridSpec(2, 20, "seed"), check_size=False).histograms()[0]
    general = frame_signature(g, GridSpec(2, 20, "general"), check_size=False).histograms()[0]
    assert seed[0, 20] == 1 and seed[1, 20] == 1  # counted in cell (0,0) and again, wrapped, in (0,1)
    assert general[0, 20] == 1 and general[1, 20] == 0
    assert seed.sum(axis=1).tolist() == [6, 6, 6, 6]


def test_seed_cell_past_last_row_reads_zero() -> None:
    # 5 rows x 4 cols, N=2: cells 3x2. Cells of the second row read rows 3, 4 and a missing row 5.
    g = np.full((5, 4), 255.0, np.float32)
    h = frame_signature(g, GridSpec(2, 20, "seed"), check_size=False).histograms()[0]
    assert h[0].tolist() == [0] * 20 + [6]
    assert h[2].tolist() == [2] + [0] * 19 + [4]  # two zero pixels from the missing row, in bin 0
    assert h[3].tolist() == [2] + [0] * 19 + [4]


@pytest.mark.parametrize("shape,n", [((11, 13), 3), ((10, 7), 4), ((9, 9), 2), ((8, 12), 5)])
def test_seed_and_general_match_literal_oracle(shape: tuple[int, int], n: int) -> None:
    rng = np.random.default_rng(sum(shape) * n)
    frames_a = [rng.integers(0, 256, shape).astype(np.float32) for _ in range(3)]
    frames_b = [rng.integers(0, 256, shape).astype(np.float32) for _ in range(3)]
    frames_b[1] = frames_a[1]
    for mode in ("seed", "general"):
        spec = GridSpec(n, 6, mode)  # type: ignore[arg-type]
        got = window_similarity(win(frames_a, spec), win(frames_b, spec))
        assert got == pytest.approx(literal_window(frames_a, frames_b, n, 6, mode), abs=1e-12)


def test_every_seed_cell_has_ch_times_cw_pixels() -> None:
    for h, w, n in [(1300, 1500, 24), (1300, 1500, 7), (17, 23, 4), (5, 9, 3)]:
        sig = frame_signature(np.zeros((h, w), np.float32), GridSpec(n, 20, "seed"), check_size=False)
        ch, cw = math.ceil(h / n), math.ceil(w / n)
        assert set(sig.histograms()[0].sum(axis=1).tolist()) == {ch * cw}
        assert set(sig.cell_pixels.tolist()) == {ch * cw}


def test_union_ks_equals_max_over_all_bins() -> None:
    # KS at the union of occurring values vs the signature path's max over every bin, unequal sizes too.
    rng = np.random.default_rng(5)
    for _ in range(200):
        na, nb = rng.integers(1, 30, 2)
        a = rng.integers(0, 7, na).tolist()
        b = rng.integers(0, 7, nb).tolist()
        ca = np.cumsum(np.bincount(a, minlength=7)) / na
        cb = np.cumsum(np.bincount(b, minlength=7)) / nb
        assert np.abs(ca - cb).max() == pytest.approx(literal_ks(a, b), abs=1e-15)


def test_general_mode_unequal_cell_sizes_and_frame_sizes() -> None:
    rng = np.random.default_rng(9)
    a = [rng.integers(0, 256, (13, 11)).astype(np.float32)]
    b = [rng.integers(0, 256, (14, 10)).astype(np.float32)]  # different size: cells differ in pixel count
    spec = GridSpec(3, 8, "general")
    got = window_similarity(win(a, spec), win(b, spec))
    cells_a = literal_cells(a[0], 3, "general")
    cells_b = literal_cells(b[0], 3, "general")
    exp = sum(
        1 - literal_ks([literal_bin(v, 8) for v in x], [literal_bin(v, 8) for v in y])
        for x, y in zip(cells_a, cells_b, strict=True)
    )
    assert got == pytest.approx(exp / 9, abs=1e-12)


def test_seed_and_general_agree_on_multiples_of_n() -> None:
    rng = np.random.default_rng(3)
    a = [rng.integers(0, 256, (48, 72)).astype(np.float32) for _ in range(4)]
    b = [rng.integers(0, 256, (48, 72)).astype(np.float32) for _ in range(4)]
    seed = window_similarity(win(a, GridSpec(24, 20, "seed"), 2), win(b, GridSpec(24, 20, "seed"), 2))
    general = window_similarity(win(a, GridSpec(24, 20, "general"), 2), win(b, GridSpec(24, 20, "general"), 2))
    assert seed == pytest.approx(general, abs=1e-12)
    assert seed < 1.0


# --- properties and batch forms -----------------------------------------------------------------------


def _windows(count: int, frames: int, shape: tuple[int, int], spec: GridSpec, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    pool = [
        frame_signature(rng.integers(0, 256, (2, *shape), dtype=np.uint8), spec, check_size=False)
        for _ in range(count + frames)
    ]
    # Sliding windows over one sequence, plus one built from fresh frames (no shared signatures).
    ws = [window_signature(pool[i : i + frames]) for i in range(count)]
    ws.append(window_signature([pool[(7 * i) % len(pool)] for i in range(frames)]))
    return ws


def test_identity_symmetry_and_batch_forms_agree() -> None:
    spec = GridSpec(4, 10, "general")
    ws = _windows(6, 5, (23, 19), spec)
    for w in ws:
        assert window_similarity(w, w) == 1.0
    mat = pairwise_similarity(ws)
    np.testing.assert_allclose(mat, mat.T, atol=0)
    np.testing.assert_array_equal(np.diag(mat), 1.0)
    for i in range(len(ws)):
        for j in range(len(ws)):
            assert mat[i, j] == pytest.approx(window_similarity(ws[i], ws[j]), abs=1e-12)
    np.testing.assert_allclose(similarity_one_to_many(ws[2], ws), mat[2], atol=1e-12)
    assert ((mat > 0) & (mat <= 1)).all()
    assert mat.min() < 1.0


def test_incompatible_windows_are_refused() -> None:
    a = _windows(1, 3, (12, 12), GridSpec(3, 5, "general"))[0]
    c = _windows(1, 3, (12, 12), GridSpec(4, 5, "general"))[0]
    with pytest.raises(ValueError, match="grid spec"):
        window_similarity(a, c)
    with pytest.raises(ValueError, match="grid spec"):
        similarity_one_to_many(a, [a, c])
    with pytest.raises(ValueError, match="grid spec"):
        pairwise_similarity([a, c])
    single = window_signature(
        [frame_signature(np.zeros((1, 12, 12), np.uint8), GridSpec(3, 5, "general")) for _ in range(3)]
    )
    with pytest.raises(ValueError, match="channels"):
        window_similarity(a, single)


# --- part-filled windows: aligned from the end, normalised by the frames compared -----------------------


def test_part_filled_window_is_compared_on_the_latest_frames() -> None:
    rng = np.random.default_rng(21)
    shape = (11, 13)
    planes_a = [rng.integers(0, 256, shape).astype(np.float32) for _ in range(5)]
    planes_b = [rng.integers(0, 256, shape).astype(np.float32) for _ in range(2)]
    spec = GridSpec(3, 6, "seed")
    a, b = win(planes_a, spec), win(planes_b, spec)
    # The latest 2 frames of A against B's 2, frame by frame from the end; mean over 2 frames, not 5.
    expected = literal_window(planes_a[-2:], planes_b, 3, 6, "seed")
    assert window_similarity(a, b) == pytest.approx(expected, abs=1e-12)  # type: ignore[arg-type]
    assert window_similarity(b, a) == pytest.approx(expected, abs=1e-12)  # type: ignore[arg-type]
    got = compare_windows(a, b)  # type: ignore[arg-type]
    assert (got.frames, got.frames_a, got.frames_b, got.partial) == (2, 5, 2, True)
    assert got.similarity == window_similarity(a, b)  # type: ignore[arg-type]
    assert "compared the latest 2 frames" in got.note() and "5 and 2 frames" in got.note()
    full = compare_windows(a, a)  # type: ignore[arg-type]
    assert (full.similarity, full.frames, full.partial, full.note()) == (1.0, 5, False, "")
    # A's latest frames equal to B's: similarity 1 although A holds more.
    tail = win(planes_a[-2:], spec)
    assert window_similarity(a, tail) == 1.0  # type: ignore[arg-type]
    assert cell_similarities(a, b).shape == (2, 1, 3, 3)  # type: ignore[arg-type]
    aa, bb = aligned(a, b)  # type: ignore[arg-type]
    assert aa.frames == a.frames[-2:] and bb is b  # type: ignore[attr-defined]
    assert latest_frames(a, 9) is a  # type: ignore[arg-type]


def test_batch_forms_agree_on_windows_of_mixed_length() -> None:
    spec = GridSpec(4, 10, "general")
    full = _windows(6, 5, (23, 19), spec, seed=3)
    ws = [full[0], latest_frames(full[1], 2), full[2], latest_frames(full[3], 4), latest_frames(full[4], 2), full[5]]
    mat = pairwise_similarity(ws)
    np.testing.assert_array_equal(np.diag(mat), 1.0)
    np.testing.assert_allclose(mat, mat.T, atol=0)
    for i in range(len(ws)):
        for j in range(len(ws)):
            if i != j:
                assert mat[i, j] == pytest.approx(window_similarity(ws[i], ws[j]), abs=1e-12)
    sims, frames = compare_one_to_many(ws[1], ws)
    np.testing.assert_allclose(sims, mat[1], atol=1e-12)
    assert frames.tolist() == [2, 2, 2, 2, 2, 2]
    sims, frames = compare_one_to_many(ws[3], ws)
    np.testing.assert_allclose(sims, mat[3], atol=1e-12)
    assert frames.tolist() == [4, 2, 4, 4, 2, 4]
    np.testing.assert_allclose(similarity_one_to_many(ws[0], ws), mat[0], atol=1e-12)


def test_paths_of_a_part_filled_window(tmp_path: Path) -> None:
    rng = np.random.default_rng(23)
    wa = window_files(_study_window(tmp_path / "a", rng, 4, (24, 20)))
    wb = window_files(_study_window(tmp_path / "b", rng, 2, (24, 20)))
    spec = GridSpec(4, 20, "general")
    got = compare_paths(wa, wb, spec)
    assert (got.frames, got.frames_a, got.frames_b) == (2, 4, 2)
    assert got.similarity == similarity_from_paths(wa[-2:], wb, spec) == similarity_from_paths(wa, wb, spec)


def test_general_mode_refuses_images_smaller_than_grid() -> None:
    with pytest.raises(ValueError, match="empty cells"):
        frame_signature(np.zeros((3, 30), np.uint8), GridSpec(4, 5, "general"))


# --- files, size check, cache -------------------------------------------------------------------------


def _write_rgb(path: Path, rgb: np.ndarray) -> Path:
    Image.fromarray(rgb, mode="RGB").save(path)
    return path


def test_seed_mode_refuses_wrong_size_and_names_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # Real COMS geometry: 1500 wide x 1300 high, numpy shape (1300, 1500); the transposed image is refused.
    assert (SEED_WIDTH, SEED_HEIGHT) == (1500, 1300)
    good = _write_rgb(tmp_path / "good.png", rng.integers(0, 256, (1300, 1500, 3), dtype=np.uint8))
    bad = _write_rgb(tmp_path / "bad.png", rng.integers(0, 256, (1500, 1300, 3), dtype=np.uint8))
    sig = frame_signature_from_paths([good], GridSpec())
    assert sig.shape == (1300, 1500)
    with pytest.raises(ImageSizeError, match=r"bad\.png: image is 1300 wide x 1500 high.*1500 wide x 1300 high"):
        frame_signature_from_paths([bad], GridSpec())
    with pytest.raises(ImageSizeError, match="frame-7"):
        frame_signature(np.zeros((10, 10), np.uint8), GridSpec(), source="frame-7")
    with pytest.raises(ImageSizeError, match="1300 wide x 1500 high"):
        frame_signature_from_rgb(rng.integers(0, 256, (1, 1500, 1300, 3), dtype=np.uint8), GridSpec())
    # General mode takes it.
    assert frame_signature_from_paths([bad], GridSpec(mode="general")).shape == (1500, 1300)


def test_rgb_paths_match_in_memory_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (2, 20, 18, 3), dtype=np.uint8)
    paths = [_write_rgb(tmp_path / f"c{k}.png", rgb[k]) for k in range(2)]
    spec = GridSpec(3, 20, "seed")
    a = frame_signature_from_paths(paths, spec, check_size=False)
    b = frame_signature_from_rgb(rgb, spec, check_size=False)
    np.testing.assert_array_equal(a.cum, b.cum)


def test_cache_hit_miss_and_invalidation(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    paths = [_write_rgb(tmp_path / f"c{k}.png", rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)) for k in range(2)]
    cache = SignatureCache(tmp_path / "cache")
    spec = GridSpec(5, 20, "general")
    first = frame_signature_from_paths(paths, spec, cache)
    assert (cache.hits, cache.misses) == (0, 1)
    again = frame_signature_from_paths(paths, spec, cache)
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first.cum, again.cum)
    np.testing.assert_array_equal(first.cell_pixels, again.cell_pixels)
    assert again.shape == first.shape and again.channels == 2
    frame_signature_from_paths(paths, GridSpec(6, 20, "general"), cache)  # other spec: miss
    assert cache.misses == 2
    _write_rgb(paths[0], rng.integers(0, 256, (30, 30, 3), dtype=np.uint8))
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = frame_signature_from_paths(paths, spec, cache)
    assert cache.misses == 3
    assert not np.array_equal(changed.cum, first.cum)


@pytest.mark.parametrize("side", [30, 60])  # cells of <= 255 pixels (per-bin counts as uint8) and of 900
def test_cache_round_trip_is_exact_and_reads_the_older_format(tmp_path: Path, side: int) -> None:
    rng = np.random.default_rng(side)
    sig = frame_signature(rng.integers(0, 256, (4, side, side), dtype=np.uint8), GridSpec(2, 20, "general"))
    cache = SignatureCache(tmp_path)
    cache.put("k" * 64, sig)
    back = cache.get("k" * 64, sig.spec)
    assert back is not None and back.cum.dtype == sig.cum.dtype
    np.testing.assert_array_equal(back.cum, sig.cum)
    np.testing.assert_array_equal(back.cell_pixels, sig.cell_pixels)
    # A file written before per-bin counts were stored (cumulative counts, numpy's own format) still reads.
    old = tmp_path / "oo" / f"{'o' * 64}.npz"
    old.parent.mkdir()
    np.savez_compressed(old, cum=sig.cum, cell_pixels=sig.cell_pixels, shape=np.array(sig.shape), channels=sig.channels)
    older = cache.get("o" * 64, sig.spec)
    assert older is not None
    np.testing.assert_array_equal(older.cum, sig.cum)


def _study_window(root: Path, rng: np.random.Generator, frames: int, shape: tuple[int, int]) -> Path:
    for k in range(1, frames + 1):
        d = root / f"image_{k}"
        d.mkdir(parents=True)
        for c in ("ir01", "ir02", "swir", "wv"):
            _write_rgb(d / f"{c}.png", np.repeat(rng.integers(0, 256, (*shape, 1), dtype=np.uint8), 3, axis=2))
    return root


def test_similarity_from_paths_with_workers_and_cache(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    wa = window_files(_study_window(tmp_path / "a", rng, 3, (24, 20)))
    wb = window_files(_study_window(tmp_path / "b", rng, 3, (24, 20)))
    spec = GridSpec(4, 20, "general")
    cache = SignatureCache(tmp_path / "cache")
    one = similarity_from_paths(wa, wb, spec, cache)
    two = similarity_from_paths(wa, wb, spec, cache, workers=2)
    assert one == two
    assert cache.hits == 0  # the second call's workers had their own cache objects but read the same files
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 6
    planes_a = [np.asarray(Image.open(p).convert("RGB")) for f in wa for p in f]
    planes_b = [np.asarray(Image.open(p).convert("RGB")) for f in wb for p in f]
    exp = literal_window([grey_from_rgb(x) for x in planes_a], [grey_from_rgb(x) for x in planes_b], 4, 20, "general")
    assert one == pytest.approx(exp, abs=1e-12)


# --- cross-check against the study's own program (../shared/data/study/reference) -----------------------


def test_matches_the_study_program_on_small_rgb_images(tmp_path: Path) -> None:
    """The quirks at sizes where they show: the study's Similarity class (main.cpp's size check skipped by the
    driver's ``anysize`` mode) on small RGB images whose cells wrap into the next row and read zero rows.
    Full-size real frames: tests/services/metric/test_study_program.py."""
    program = build_study_program(tmp_path, published=False)
    rng = np.random.default_rng(11)
    shape = (29, 37)  # 37 wide x 29 high; N=5: cells 6 x 8, 3 columns wrap, 1 row of zeros
    frames, channels = 2, 2
    paths = []
    for k in range(2 * frames * channels):
        rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        rgb[: shape[0] // 2] = rgb[: shape[0] // 2] // 3  # some structure so cells differ in places
        rgb[-1, :5] = rgb[-1, :5, :1]  # and some grey pixels (R = G = B) beside the coloured ones
        paths.append(_write_rgb(tmp_path / f"i{k}.png", rgb))
    half = frames * channels
    fa = [paths[i : i + channels] for i in range(0, half, channels)]
    fb = [paths[half + i : half + i + channels] for i in range(0, half, channels)]
    for n, bins in [(5, 20), (3, 7), (8, 255), (1, 1)]:
        spec = GridSpec(n, bins, "seed")
        sa = window_signature([frame_signature_from_paths(f, spec, check_size=False) for f in fa])
        sb = window_signature([frame_signature_from_paths(f, spec, check_size=False) for f in fb])
        cells = cell_similarities(sa, sb)
        theirs = np.array(
            [[program.anysize(x, y, n, bins) for x, y in zip(a, b, strict=True)] for a, b in zip(fa, fb, strict=True)]
        )
        np.testing.assert_allclose(cells.sum(axis=(2, 3)), theirs, rtol=0, atol=1e-9)
        assert window_similarity(sa, sb) == pytest.approx(theirs.sum() / (frames * channels * n * n), abs=1e-9)
    # With its size check the study's program refuses the small image (and satwatch's seed mode does too).
    assert program.image(paths[0], paths[1], 5, 20) == -1
    with pytest.raises(ImageSizeError, match=r"i0\.png: image is 37 wide x 29 high"):
        frame_signature_from_paths([paths[0]], GridSpec(5, 20, "seed"))


def test_grey_png_reads_like_grey_stored_as_rgb(tmp_path: Path) -> None:
    # satwatch reads an 8-bit grey PNG as the grey it is, R = G = B. (The study's program does not: stb_image
    # hands it one byte a pixel and it takes the next two pixels as G and B, reading past its buffer at the last
    # pixel; KMA's files are RGB, so seed mode does not copy that. See docs/groundtruth.md.)
    rng = np.random.default_rng(12)
    grey = rng.integers(0, 256, (21, 17), dtype=np.uint8)
    grey[0, :4] = 255
    Image.fromarray(grey, mode="L").save(tmp_path / "l.png")
    _write_rgb(tmp_path / "rgb.png", np.repeat(grey[:, :, None], 3, axis=2))
    spec = GridSpec(3, 20, "seed")
    a = frame_signature_from_paths([tmp_path / "l.png"], spec, check_size=False)
    b = frame_signature_from_paths([tmp_path / "rgb.png"], spec, check_size=False)
    np.testing.assert_array_equal(a.cum, b.cum)
    planes = [grey_from_rgb(np.repeat(grey[:, :, None], 3, axis=2))]
    exp = frame_signature(planes[0], spec, check_size=False)
    np.testing.assert_array_equal(a.cum, exp.cum)


def test_cdf_features_are_the_cells_empirical_cdfs() -> None:
    rng = np.random.default_rng(3)
    planes = rng.integers(0, 256, (2, 37, 29), dtype=np.uint8)
    spec = GridSpec(n=4, bins=5, mode="general")
    feats = cdf_features(planes, spec)
    assert feats.shape == (2 * 5, 4, 4) and feats.dtype == np.float32
    rows, cols = np.array_split(np.arange(37), 4), np.array_split(np.arange(29), 4)
    for c in range(2):
        bins = bin_values(planes[c], 5)
        for i, r in enumerate(rows):
            for j, q in enumerate(cols):
                cell = bins[np.ix_(r, q)]
                for k in range(5):  # fraction of the cell's pixels in bins below k + 1
                    assert feats[c * 5 + k, i, j] == pytest.approx(np.mean(cell <= k), abs=1e-7)


def test_a_frame_listed_twice_is_read_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(31)
    win = _study_window(tmp_path / "a", rng, 2, (24, 20))
    files = window_files(win)
    (tmp_path / "link").symlink_to(win / "image_1")  # the same files under another name
    via_link = [tmp_path / "link" / p.name for p in files[0]]
    cache = SignatureCache(tmp_path / "cache")
    spec = GridSpec(4, 20, "general")
    sigs = frame_signatures_from_paths([files[0], files[1], files[0], via_link], spec, cache)
    assert (cache.hits, cache.misses) == (0, 2)
    assert sigs[0] is sigs[2] is sigs[3] and sigs[1] is not sigs[0]
    fresh = frame_signatures_from_paths([via_link, files[1]], spec, None, workers=2)
    np.testing.assert_array_equal(fresh[0].cum, sigs[0].cum)
    # Overlapping windows give the same similarity as when every frame is read on its own.
    wa, wb = [files[0], files[1]], [files[1], files[0]]
    assert similarity_from_paths(wa, wb, spec) == window_similarity(
        window_signature([frame_signature_from_paths(f, spec) for f in wa]),
        window_signature([frame_signature_from_paths(f, spec) for f in wb]),
    )
