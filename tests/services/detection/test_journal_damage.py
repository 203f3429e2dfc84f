"""A damaged index journal is reported, never passed over silently; intact entries still replay."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import numpy as np

from satwatch.services.detection.journal import IndexJournal
from tests.helpers import T0


def write(path: Path, n: int = 3) -> list[str]:
    journal = IndexJournal(path)
    ids = []
    for i in range(n):
        wid = f"COMS-1:w{i}"
        journal.append(wid, "COMS-1", (T0 + timedelta(minutes=15 * i),), np.full(4, i, np.float32))
        ids.append(wid)
    journal.close()
    return ids


def replay(path: Path) -> tuple[list[str], int]:
    journal = IndexJournal(path)
    ids = [wid for wid, *_ in journal.replay()]
    journal.close()
    return ids, journal.damaged


def test_intact_journal_replays_everything(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    ids = write(path)
    assert replay(path) == (ids, 0)
    assert all("crc" in json.loads(line) for line in path.read_text().splitlines())


def test_torn_last_record_is_reported(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "journal.jsonl"
    ids = write(path)
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # a crash mid-write
    with caplog.at_level(logging.WARNING):
        assert replay(path) == (ids[:2], 1)
    assert "line 3 is torn or damaged" in caplog.text


def test_one_changed_byte_mid_journal_is_reported(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "journal.jsonl"
    ids = write(path)
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"COMS-1:w1"', '"COMS-1:w7"')  # still valid JSON, wrong content
    path.write_text("".join(lines))
    with caplog.at_level(logging.WARNING):
        assert replay(path) == ([ids[0], ids[2]], 1)
    assert "line 2 is torn or damaged" in caplog.text


def test_entries_written_before_checksums_still_replay(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    row = {"window_id": "COMS-1:old", "satellite": "COMS-1", "frame_times": [T0.isoformat()], "vector": [0.0]}
    path.write_text(json.dumps(row) + "\n")
    assert replay(path) == (["COMS-1:old"], 0)


def test_a_detector_counts_damaged_journal_records(tmp_path: Path) -> None:
    from tests.helpers import make_frame
    from tests.services.detection.stand_ins import make_detector

    det = make_detector(tmp_path)
    for i in range(6):
        det.process(make_frame(T0 + timedelta(minutes=15 * i)))
    det.flush()  # durable, then a crash: no snapshot folds the journal away
    journal = tmp_path / "index" / "journal.jsonl"
    data = journal.read_bytes()
    journal.write_bytes(data[:-25])  # a torn last record
    restarted = make_detector(tmp_path)
    assert restarted.metrics.errors.labels("journal_damaged")._value.get() == 1
