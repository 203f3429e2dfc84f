"""Ground-truth signatures of the frames the detector has seen, for exact re-ranking of search results.

Each arriving frame's grid histograms (general mode on the shrunk frame, about 1 ms) are kept in memory for
recent frames and on disk for all, keyed by satellite and time, so any past window the detector indexed can
be compared exactly with the current one without decoding a single image.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from satwatch.services.metric.compare import PairMemo, similarity_one_to_many_memo
from satwatch.services.metric.groundtruth import (
    FrameSignature,
    GridSpec,
    SignatureCache,
    WindowSignature,
    frame_signature,
    window_signature,
)
from satwatch.services.retrieval.search import rerank


class StreamSignatures:
    """Per-frame signatures by (satellite, time); also the detector's re-ranker."""

    def __init__(
        self, cache_dir: str | Path | None = None, grid: int = 24, bins: int = 20, memory_frames: int = 1000
    ) -> None:
        self.spec = GridSpec(n=grid, bins=bins, mode="general")
        self.cache = SignatureCache(cache_dir) if cache_dir is not None else None
        self._memory: OrderedDict[tuple[str, datetime], FrameSignature] = OrderedDict()
        self._memory_frames = memory_frames
        #: Frame-pair sums of earlier re-ranks (alerts come in runs whose candidates share most frame pairs).
        self.pair_memo = PairMemo()
        # Compressing and writing a signature takes longer than computing it: a writer thread does it off
        # the per-frame path; flush() waits for it before offsets are committed.
        self._pending: queue.Queue[tuple[str, FrameSignature] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        if self.cache is not None:
            self._writer = threading.Thread(target=self._write_loop, name="signature-writer", daemon=True)
            self._writer.start()

    def _write_loop(self) -> None:
        assert self.cache is not None
        while True:
            item = self._pending.get()
            try:
                if item is None:
                    return
                self.cache.put(*item)
            finally:
                self._pending.task_done()

    def flush(self) -> None:
        """Wait until every signature handed to ``add`` is on disk."""
        if self._writer is not None:
            self._pending.join()

    def close(self) -> None:
        if self._writer is not None:
            self.flush()
            self._pending.put(None)
            self._writer.join()
            self._writer = None

    def _key(self, satellite: str, time: datetime) -> str:
        text = f"stream:{self.spec.key}:{satellite}:{time.astimezone(UTC).isoformat()}"
        return hashlib.sha256(text.encode()).hexdigest()

    def _remember(self, key: tuple[str, datetime], sig: FrameSignature) -> None:
        self._memory[key] = sig
        self._memory.move_to_end(key)
        if len(self._memory) > self._memory_frames:
            self._memory.popitem(last=False)

    def add(
        self, satellite: str, time: datetime, planes: np.ndarray, signature: FrameSignature | None = None
    ) -> FrameSignature:
        """Remember and persist the signature of one frame (uint8 planes, C x H x W); pass ``signature`` when
        it is already computed with this store's ``spec``."""
        sig = signature if signature is not None else frame_signature(planes, self.spec)
        key = self._key(satellite, time)
        if sig.key != key:
            # Named as a signature read back from disk is, so the re-rank's pair memo knows the frame.
            sig = replace(sig, key=key)
        self._remember((satellite, time), sig)
        if self._writer is not None:
            self._pending.put((key, sig))
        return sig

    def frame(self, satellite: str, time: datetime) -> FrameSignature | None:
        sig = self._memory.get((satellite, time))
        if sig is None and self.cache is not None:
            sig = self.cache.get(self._key(satellite, time), self.spec)
            if sig is not None:
                self._remember((satellite, time), sig)
        return sig

    def window(self, satellite: str, times: Sequence[datetime]) -> WindowSignature | None:
        """Signature of the window made of these frames; None if any frame was never seen."""
        sigs = [self.frame(satellite, t) for t in times]
        if any(s is None for s in sigs):
            return None
        return window_signature([s for s in sigs if s is not None])

    def rerank(self, satellite: str, times: Sequence[datetime], neighbours: list[Any]) -> list[Any]:
        """Attach exact similarity to each neighbour (records with ``frame_times``) and sort by it."""
        query = self.window(satellite, times)
        if query is None:
            return neighbours
        return rerank(
            query,
            neighbours,
            lambda r: self.window(r.satellite, r.frame_times),
            similarity_fn=lambda q, many: similarity_one_to_many_memo(q, many, self.pair_memo),
        )
