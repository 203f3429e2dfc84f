"""Append-only journal of index additions since the last index snapshot.

Writing an HNSW snapshot per frame is too costly, yet offsets may only be committed once the index update is
durable. Each new window is appended here instead, and ``sync`` makes a batch durable before its offsets
commit; on start the journal is replayed into the loaded snapshot (adds are idempotent) and it is truncated
after every snapshot.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np


class IndexJournal:
    """JSON-lines file of (window record fields, vector)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the process lifetime

    def append(self, window_id: str, satellite: str, frame_times: tuple[datetime, ...], vector: np.ndarray) -> None:
        row = {
            "window_id": window_id,
            "satellite": satellite,
            "frame_times": [t.isoformat() for t in frame_times],
            "vector": np.asarray(vector, dtype=np.float32).tolist(),
        }
        self._fh.write(json.dumps(row) + "\n")

    def sync(self) -> None:
        """Force appended entries to disk (once per batch, before offsets are committed)."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def replay(self) -> Iterator[tuple[str, str, tuple[datetime, ...], np.ndarray]]:
        """Every complete entry; a torn last line (crash mid-write) is skipped."""
        if not self.path.exists():
            return
        self._fh.flush()
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                times = tuple(datetime.fromisoformat(t) for t in row["frame_times"])
                yield row["window_id"], row["satellite"], times, np.asarray(row["vector"], dtype=np.float32)

    def truncate(self) -> None:
        self._fh.flush()  # buffered entries are in the snapshot just written: drop them with the rest
        self._fh.truncate(0)
        self._fh.seek(0)
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self.sync()
        self._fh.close()
