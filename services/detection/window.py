"""Per-satellite rolling window of per-frame results, so a new frame costs one frame's encoding.

The window follows the one window rule (services.frames.windows): the latest ``size`` frames within
``span`` of the newest one; frames missing from the feed leave it part-filled rather than restarting it.
The window embedding is the mean of the cached per-frame embeddings (DESIGN.md section 4), or for an
encoder that maps a window's consecutive parts (v2.1) the means of those parts. Running prefix sums (the sum
of every vector up to each frame, in float64) keep both O(dim) per frame instead of O(window * dim): any part's
sum is the difference of two of them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np

from satwatch.services.models.embedding import part_bounds


class Admission(StrEnum):
    """What the window did with an offered frame."""

    APPENDED = "appended"
    RESTARTED = "restarted"  # a gap as long as the span: every earlier frame has left the window
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"


@dataclass
class WindowEntry:
    """Cached per-frame results kept in the window."""

    time: datetime
    embedding: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)


class _Filling:
    """How full a window of ``size`` frames is, from its length (shared by the window and its views)."""

    size: int

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def full(self) -> bool:
        return len(self) == self.size

    @property
    def fill(self) -> float:
        """Fraction of the window that holds frames (0..1)."""
        return len(self) / self.size


@dataclass(frozen=True)
class WindowView(_Filling):
    """A window's frames as they stood at one moment (a new frame just added): what search, alerts and index
    growth read, while the window itself moves on with the next frames of a batch."""

    times: tuple[datetime, ...]
    size: int

    def __len__(self) -> int:
        return len(self.times)

    @property
    def start(self) -> datetime:
        return self.times[0]

    @property
    def end(self) -> datetime:
        return self.times[-1]


class RollingWindow(_Filling):
    """The latest ``size`` frames of one satellite within ``span``, in time order, with cached embeddings."""

    def __init__(self, size: int, span: timedelta) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        if span <= timedelta(0):
            raise ValueError("window span must be positive")
        self.size = size
        self.span = span
        self._entries: deque[WindowEntry] = deque()
        self._sum: np.ndarray | None = None
        #: Prefix sums: ``_prefix[i]`` is the sum of the vectors of every frame up to entry i (since the last
        #: restart), ``_base`` that before the first entry; so entries a..b-1 sum to prefix[b-1] - (prefix[a-1]).
        self._prefix: deque[np.ndarray] = deque()
        self._base: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def start(self) -> datetime | None:
        return self._entries[0].time if self._entries else None

    @property
    def end(self) -> datetime | None:
        return self._entries[-1].time if self._entries else None

    @property
    def entries(self) -> list[WindowEntry]:
        return list(self._entries)

    @property
    def times(self) -> tuple[datetime, ...]:
        return tuple(e.time for e in self._entries)

    def view(self) -> WindowView:
        """The window's frames as they stand now (it must hold at least one)."""
        if not self._entries:
            raise ValueError("the window is empty")
        return WindowView(self.times, self.size)

    def check(self, time: datetime) -> Admission:
        """Classify a frame time without changing the window."""
        if not self._entries:
            return Admission.APPENDED
        last = self._entries[-1].time
        if time == last or any(e.time == time for e in self._entries):
            return Admission.DUPLICATE
        if time < last:
            return Admission.OUT_OF_ORDER
        if time - last >= self.span:
            return Admission.RESTARTED
        return Admission.APPENDED

    def add(self, entry: WindowEntry) -> Admission:
        """Offer a frame; duplicates and out-of-order frames are refused and leave the window as it was."""
        verdict = self.check(entry.time)
        if verdict in (Admission.DUPLICATE, Admission.OUT_OF_ORDER):
            return verdict
        if verdict is Admission.RESTARTED:
            self.clear()
        vec = np.asarray(entry.embedding, dtype=np.float64)
        self._entries.append(entry)
        self._sum = vec.copy() if self._sum is None else self._sum + vec
        self._prefix.append(vec.copy() if not self._prefix else self._prefix[-1] + vec)
        if self._base is None:
            self._base = np.zeros_like(vec)
        oldest = entry.time - self.span
        while len(self._entries) > self.size or self._entries[0].time <= oldest:
            old = self._entries.popleft()
            self._sum -= np.asarray(old.embedding, dtype=np.float64)
            self._base = self._prefix.popleft()
        return verdict

    def clear(self) -> None:
        self._entries.clear()
        self._sum = None
        self._prefix.clear()
        self._base = None

    def part_means(self, parts: int = 1) -> np.ndarray:
        """Means of the window's ``parts`` consecutive parts (``part_bounds``), concatenated (float32):
        the input of a parts encoder; ``parts`` = 1 is :meth:`embedding`. O(parts * dim), not O(window)."""
        if parts == 1:
            return self.embedding()
        if self._base is None or not self._entries:
            raise ValueError("the window is empty")
        base, prefix = self._base, self._prefix
        out = [(prefix[b - 1] - (prefix[a - 1] if a else base)) / (b - a) for a, b in part_bounds(len(prefix), parts)]
        return np.concatenate(out).astype(np.float32)

    def embedding(self) -> np.ndarray:
        """Mean of the per-frame embeddings currently held (float32)."""
        if self._sum is None or not self._entries:
            raise ValueError("the window is empty")
        return (self._sum / len(self._entries)).astype(np.float32)
