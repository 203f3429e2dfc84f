"""The metric's vocabulary: the grid spec, the signature types of a frame and of a window, their memory."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Literal

import numpy as np

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
