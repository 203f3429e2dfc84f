"""The file-level API: signatures cached on disk, frames and windows read from paths, similarity of two folders."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.metric.compare import WindowComparison, window_signature, window_similarity
from satwatch.services.metric.signatures import _cum_dtype, _frame_signature_uncached
from satwatch.services.metric.spec import FrameSignature, GridSpec

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
        with zipfile.ZipFile(buf, "w") as npz:
            for name, a in arrays.items():
                member = io.BytesIO()
                np.lib.format.write_array(member, a, allow_pickle=False)
                # Each member in one piece, and the few-byte ones stored as they are: a fifth less CPU than
                # streaming every member through its own compressor (an npz all the same).
                packed = a.nbytes > 1024
                npz.writestr(
                    f"{name}.npy",
                    member.getvalue(),
                    compress_type=zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED,
                    compresslevel=1 if packed else None,
                )
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
        return list(tqdm(it, total=jobs, desc="signatures", unit="frame", disable=None if progress else True))

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
        return list(tqdm(it, total=jobs, desc="signatures", unit="frame", disable=None if progress else True))


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
