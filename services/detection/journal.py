"""Append-only journal of index additions since the last index snapshot.

Writing an HNSW snapshot per frame is too costly, yet offsets may only be committed once the index update is
durable. Each new window is appended here instead, and ``sync`` makes a batch durable before its offsets
commit; on start the journal is replayed into the loaded snapshot (adds are idempotent) and it is truncated
after every snapshot.

Each line carries a CRC-32 of its content. A line that does not parse or whose checksum does not match (a
torn last write, a changed byte) is skipped and reported: logged with its line number and counted in
``damaged``, never passed over silently.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _crc(row: dict[str, object]) -> str:
    body = json.dumps(row, sort_keys=True, separators=(",", ":"))
    return f"{zlib.crc32(body.encode()):08x}"


#: The journal's file name in an index folder (the detector's ``<state_dir>/index``).
JOURNAL_FILE = "journal.jsonl"


def pending_windows(index_dir: str | Path) -> int:
    """How many windows the journal in ``index_dir`` holds that no index snapshot has saved yet."""
    path = Path(index_dir) / JOURNAL_FILE
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        return sum(1 for line in fh if line.strip())


class IndexJournal:
    """JSON-lines file of (window record fields, vector)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the process lifetime
        #: Lines the last replay skipped because they were torn or damaged.
        self.damaged = 0

    def append(self, window_id: str, satellite: str, frame_times: tuple[datetime, ...], vector: np.ndarray) -> None:
        row = {
            "window_id": window_id,
            "satellite": satellite,
            "frame_times": [t.isoformat() for t in frame_times],
            "vector": np.asarray(vector, dtype=np.float32).tolist(),
        }
        row["crc"] = _crc(row)
        self._fh.write(json.dumps(row) + "\n")

    def sync(self) -> None:
        """Force appended entries to disk (once per batch, before offsets are committed)."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def replay(self) -> Iterator[tuple[str, str, tuple[datetime, ...], np.ndarray]]:
        """Every intact entry. A torn or damaged line is skipped, logged and counted in ``damaged``."""
        self.damaged = 0
        if not self.path.exists():
            return
        self._fh.flush()
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                entry = self._parse(line)
                if entry is None:
                    self.damaged += 1
                    log.warning(
                        "index journal %s: line %d is torn or damaged (%d bytes); skipped. The window it held is "
                        "added again when its frames are re-read; rebuild the index from the stream if it is not",
                        self.path,
                        number,
                        len(line),
                    )
                    continue
                yield entry

    @staticmethod
    def _parse(line: str) -> tuple[str, str, tuple[datetime, ...], np.ndarray] | None:
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                return None
            stored = row.pop("crc", None)
            if stored is not None and stored != _crc(row):
                return None
            times = tuple(datetime.fromisoformat(t) for t in row["frame_times"])
            return str(row["window_id"]), str(row["satellite"]), times, np.asarray(row["vector"], dtype=np.float32)
        except (ValueError, KeyError, TypeError):
            return None

    def truncate(self) -> None:
        self._fh.flush()  # buffered entries are in the snapshot just written: drop them with the rest
        self._fh.truncate(0)
        self._fh.seek(0)
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self.sync()
        self._fh.close()
