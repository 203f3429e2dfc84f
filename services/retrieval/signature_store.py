"""Exact-metric frame signatures packed beside an index, keyed by (satellite, time), for the search re-rank.

The re-rank of one search reads the signatures of several hundred frames (the candidate windows of about ten
events). As one compressed file per frame (``metric.files.SignatureCache``) that cost a file open, a stat and
a path resolution of each channel file, and a zip inflate per frame: seconds cold. Here ``index build``
writes them in chunks of up to :data:`CHUNK_FRAMES` frames, each a plain ``.npy`` array of per-bin counts
that is memory-mapped, so a lookup is a dictionary hit and a cumulative sum over one row (tens of
microseconds), and only the rows a search touches are read from disk.

On disk a frame takes ``bins x slots`` bytes (46 KB for 4 channels, a 24 x 24 grid and 20 bins, counts of the
shrunk frame's cells fitting in 8 bits), about three times the compressed cache; keyed by satellite and time
like the frame vector store, so a frame rewritten in the archive keeps its old signature until the store is
deleted and rebuilt.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from satwatch.services.metric.groundtruth import FrameSignature, GridSpec

#: Frames per chunk file written by :meth:`FrameSignatureStore.put_many` callers that batch (index build).
CHUNK_FRAMES = 512
_KEYS = ".keys.npz"
_HIST = ".hist.npy"


def _epoch(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError(f"time {t} must be timezone-aware (UTC)")
    return int(t.timestamp())


class FrameSignatureStore:
    """Signatures of one grid spec for frames of any satellite, in chunk files under ``directory``."""

    def __init__(self, directory: str | Path, spec: GridSpec) -> None:
        self.directory = Path(directory)
        self.spec = spec
        self._lock = threading.Lock()
        self._row: dict[tuple[str, int], tuple[int, int]] = {}
        self._chunks: list[tuple[np.ndarray, tuple[int, int], int, np.ndarray]] = []
        if self.directory.is_dir():
            for keys in sorted(self.directory.glob(f"chunk-*{_KEYS}")):
                self._open_chunk(keys)

    def _open_chunk(self, keys: Path) -> None:
        hist_path = keys.with_name(keys.name[: -len(_KEYS)] + _HIST)
        with np.load(keys) as z:
            sats, times = z["satellites"].tolist(), z["times"].tolist()
            shape = (int(z["shape"][0]), int(z["shape"][1]))
            channels, pixels = int(z["channels"]), np.asarray(z["cell_pixels"], np.int32)
        hist = np.load(hist_path, mmap_mode="r")
        if hist.shape[0] != len(times) or hist.shape[1] != self.spec.bins:
            raise ValueError(f"{hist_path} holds {hist.shape}, expected {len(times)} frames of {self.spec.bins} bins")
        c = len(self._chunks)
        self._chunks.append((hist, shape, channels, pixels))
        for r, (sat, t) in enumerate(zip(sats, times, strict=True)):
            self._row.setdefault((str(sat), int(t)), (c, r))  # two builds raced: the first copy wins

    def __len__(self) -> int:
        return len(self._row)

    def has(self, satellite: str, time: datetime) -> bool:
        return (satellite, _epoch(time)) in self._row

    def get(self, satellite: str, time: datetime) -> FrameSignature | None:
        """The stored signature of the frame, or None."""
        where = self._row.get((satellite, _epoch(time)))
        if where is None:
            return None
        hist, shape, channels, pixels = self._chunks[where[0]]
        dtype = np.int16 if int(pixels.max()) <= np.iinfo(np.int16).max else np.int32
        cum = np.cumsum(hist[where[1]], axis=0, dtype=dtype)
        return FrameSignature(self.spec, shape, channels, cum, pixels, key=f"{satellite}:{_epoch(time)}")

    def put_many(self, satellite: str, times: Sequence[datetime], signatures: Sequence[FrameSignature]) -> int:
        """Store the signatures of frames not stored yet, as one chunk (per frame shape); returns how many."""
        if len(times) != len(signatures):
            raise ValueError(f"{len(times)} times but {len(signatures)} signatures")
        with self._lock:
            fresh: dict[int, FrameSignature] = {}
            for t, sig in zip(times, signatures, strict=True):
                if sig.spec != self.spec:
                    raise ValueError(f"signature of spec {sig.spec} in a store of {self.spec}")
                sec = _epoch(t)
                if (satellite, sec) not in self._row:
                    fresh.setdefault(sec, sig)
            groups: dict[tuple[tuple[int, int], int, bytes], list[int]] = {}
            for sec, sig in fresh.items():
                groups.setdefault((sig.shape, sig.channels, sig.cell_pixels.tobytes()), []).append(sec)
            for secs in groups.values():
                self._write_chunk(satellite, secs, [fresh[s] for s in secs])
            return len(fresh)

    def _write_chunk(self, satellite: str, secs: list[int], sigs: list[FrameSignature]) -> None:
        first = sigs[0]
        hist = np.stack([np.diff(s.cum, axis=0, prepend=0) for s in sigs])
        hist = hist.astype(np.uint8 if int(first.cell_pixels.max()) <= 255 else np.uint16)
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"chunk-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
        hist_path, keys_path = self.directory / (name + _HIST), self.directory / (name + _KEYS)
        tmp = self.directory / f".{name}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, hist)
        os.replace(tmp, hist_path)
        with open(tmp, "wb") as f:  # the keys file last: its presence marks a complete chunk
            np.savez(
                f,
                satellites=np.array([satellite] * len(secs)),
                times=np.array(secs, np.int64),
                shape=np.array(first.shape),
                channels=np.array(first.channels),
                cell_pixels=first.cell_pixels,
            )
        os.replace(tmp, keys_path)
        self._open_chunk(keys_path)


def signature_store_dir(index_dir: Path, spec: GridSpec) -> Path:
    """Where an index keeps the packed signatures of one grid spec."""
    return Path(index_dir) / "frame_signatures" / spec.key
