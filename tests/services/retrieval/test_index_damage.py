"""Damaged index state: a missing CURRENT pointer or a changed byte never loses the last intact snapshot."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import numpy as np

from satwatch.services.retrieval.index import SimilarityIndex, WindowRecord
from tests.helpers import T0


def grown(index: SimilarityIndex, start: int, n: int) -> SimilarityIndex:
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        t = T0 + timedelta(minutes=15 * i)
        index.add(WindowRecord(f"COMS-1:{i}", "COMS-1", t, t, (t,)), rng.normal(size=8).astype(np.float32))
    return index


def snapshots(root: Path) -> list[str]:
    return sorted(d.name for d in root.glob("snap-*"))


def test_missing_current_pointer_loads_the_newest_intact_snapshot(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "index"
    grown(SimilarityIndex(dim=8), 0, 30).save(root)
    (root / "CURRENT").unlink()
    with caplog.at_level(logging.WARNING):
        index = SimilarityIndex.open_or_create(root, 8)
    assert len(index) == 30
    assert "CURRENT pointer is missing" in caplog.text
    grown(index, 30, 5).save(root)  # the next save keeps the snapshot it was loaded from
    assert len(snapshots(root)) == 2 and len(SimilarityIndex.load(root)) == 35


def test_changed_byte_falls_back_to_the_previous_snapshot(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "index"
    index = grown(SimilarityIndex(dim=8), 0, 20)
    index.save(root)
    grown(index, 20, 10).save(root)
    newest = root / (root / "CURRENT").read_text().strip()
    graph = newest / "hnsw.bin"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        recovered = SimilarityIndex.open_or_create(root, 8)
    assert len(recovered) == 20  # the previous snapshot, intact
    assert "does not match its checksum" in caplog.text and "older intact snapshot" in caplog.text


def test_saves_keep_one_previous_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "index"
    index = SimilarityIndex(dim=8)
    for k in range(4):
        grown(index, 10 * k, 10).save(root)
    assert len(snapshots(root)) == 2
    assert len(SimilarityIndex.load(root)) == 40
