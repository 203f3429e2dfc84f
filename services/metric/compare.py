"""Comparing windows from their signatures: the compiled max-abs-difference kernels, one-to-many and all pairs,
windows of different lengths aligned from the end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from satwatch.services.metric.signatures import frame_signature
from satwatch.services.metric.spec import FrameSignature, GridSpec, WindowSignature

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
    frames: Sequence[np.ndarray] | np.ndarray,
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
    at a time: the tile's frames stay in cache while they meet each other, and each frame is read from memory
    once per tile.
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
    frames: Sequence[np.ndarray] | np.ndarray,
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
    frames: Sequence[np.ndarray] | np.ndarray,
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
#: Windows per side of the tiles of :func:`_block_sums` (frames whose cells share one pixel count). A tile's
#: frame t of every row and column window (64 x 92 KB at the study's grid) stays in L3 while the tile is done.
BLOCK_TILE = 32
#: Largest copy (bytes) of the frames' signatures stacked into one array for the pair kernels; beyond it they
#: are handed over as a typed list of the arrays themselves.
STACK_COPY_MAX = 256 << 20


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
            if len(frames) * ref.cum.nbytes <= STACK_COPY_MAX:
                # One 3-D array: the kernels index it as they index a list, and its specialisation is cached on
                # disk, whereas building a typed list compiles its methods in every fresh process (about 1 s).
                self.stack = np.stack([f.cum for f in frames])
            else:
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
        # Whole frames at a time: contiguous reads the prefetcher follows. Slices of 128-1152 slots, meant to
        # stay in L2, measured 10-40% slower on all pairs of 200 windows (2-core EPYC, 2 MB L2), as the call
        # per slice and the running maximum's reloads cost more than L3 misses save.
        _block_sums(self.stack, self.wins, rows, cols, upper, BLOCK_TILE, self.frames[0].cum.shape[1], out)
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
# One-to-many with frame-pair results remembered across calls (the detector's re-rank)


@numba.njit(cache=True, nogil=True)
def _frame_pair_sums(
    stack: np.ndarray, w: np.ndarray, ua: np.ndarray, ub: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """out[p] = the weighted KS sum of frames ua[p], ub[p] of ``stack``: what :func:`_pair_sums_memo` stores
    for a frame pair, computed the same way."""
    ns = stack.shape[2]
    acc = np.zeros(ns, dtype=np.int32)
    mx = np.zeros(ns, dtype=stack.dtype)
    for p in range(ua.shape[0]):
        acc[:] = 0
        _max_diff_add(stack[ua[p]], stack[ub[p]], 0, ns, mx, acc)
        out[p] = _weighted(acc, w)


class PairMemo:
    """Frame-pair KS sums kept from one :func:`similarity_one_to_many_memo` call to the next, by frame key.

    The detector re-ranks the candidates of every alert, and alerts come in runs (a fault lasts hours, a storm
    many frames): the next query is the last one moved on by a frame and its candidates are much the same
    windows, so most of its frame pairs were compared a frame ago. Bounded: past ``max_pairs`` it starts again.
    """

    def __init__(self, max_pairs: int = 200_000) -> None:
        self.max_pairs = max_pairs
        self._sums: dict[tuple[str, str], float] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._sums)


def similarity_one_to_many_memo(query: WindowSignature, many: Sequence[WindowSignature], memo: PairMemo) -> np.ndarray:
    """:func:`similarity_one_to_many`, bit for bit, with frame-pair sums remembered in ``memo`` across calls.

    Frames are known by their ``key`` (signatures without one are compared as :func:`similarity_one_to_many`
    does, as are batches it would not compare pair by pair through its memo).
    """
    if not many:
        return np.empty(0)
    lq = len(query.frames)
    if all(len(m.frames) == lq for m in many):
        return _one_to_many_memo(query, many, memo)
    groups = _by_compared_length([len(m.frames) for m in many], lq)
    out = np.empty(len(many))
    for k, idx in groups.items():
        out[idx] = _one_to_many_memo(latest_frames(query, k), [latest_frames(many[i], k) for i in idx], memo)
    return out


def _one_to_many_memo(query: WindowSignature, many: Sequence[WindowSignature], memo: PairMemo) -> np.ndarray:
    windows = [query, *many]
    first = query.frames[0]
    frames: dict[str, FrameSignature] = {}
    slots = 0
    for win in windows:
        if win.spec != query.spec or win.channels != query.channels or len(win.frames) != len(query.frames):
            return _one_to_many_equal(query, many)  # which refuses them, with its message
        for f in win.frames:
            if f.key is None:
                return _one_to_many_equal(query, many)
            frames.setdefault(f.key, f)
            slots += 1
    uniform = all(
        f.cum.dtype == first.cum.dtype and np.array_equal(f.cell_pixels, first.cell_pixels) for f in frames.values()
    )
    if not (uniform and len(frames) < slots and len(frames) <= MEMO_MAX_FRAMES):
        return _one_to_many_equal(query, many)  # not what _Batch compares through its pair memo
    sums = memo._sums
    if len(sums) > memo.max_pairs:
        sums.clear()
    qkeys = [f.key for f in query.frames]
    rows: list[list[tuple[str, str] | None]] = []
    missing: dict[tuple[str, str], None] = {}
    for m in many:
        row: list[tuple[str, str] | None] = []
        for qk, f in zip(qkeys, m.frames, strict=True):
            ck = f.key
            assert qk is not None and ck is not None
            if ck == qk:
                row.append(None)
                continue
            pair = (qk, ck) if qk < ck else (ck, qk)  # symmetric: |a - b|
            if pair not in sums:
                missing[pair] = None
            row.append(pair)
        rows.append(row)
    memo.misses += len(missing)
    if missing:
        keys = list({k: None for two in missing for k in two})
        at = {k: i for i, k in enumerate(keys)}
        stack = np.stack([frames[k].cum for k in keys])
        ua = np.array([at[a] for a, _ in missing], dtype=np.int64)
        ub = np.array([at[b] for _, b in missing], dtype=np.int64)
        got = np.empty(len(missing))
        _frame_pair_sums(stack, first.weights(), ua, ub, got)
        sums.update(zip(missing, got.tolist(), strict=True))
    out = np.empty(len(many))
    hits = 0
    for p, row in enumerate(rows):
        s = 0.0
        for known in row:
            if known is not None:
                s += sums[known]
                hits += 1
        out[p] = s
    memo.hits += hits - len(missing)
    return 1.0 - out / query.size
