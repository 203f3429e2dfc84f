"""The consumer loop's look-ahead and the batch's one store commit, without a broker: a scripted Kafka consumer
and producer around a detector of stand-in models.

Batches are started (scoring queued) before earlier ones finish, yet they finish in poll order, and each
batch's offsets are committed only once its alerts are committed to the store (visible to another connection
to the file) and published.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

import satwatch.consumers.detector as consumer_module
from satwatch.consumers.detector import LOOKAHEAD, DetectorConsumer
from satwatch.services.config import Settings
from satwatch.services.detection.detector import Detector
from satwatch.services.frames.codec import encode_inline
from tests.helpers import T0, make_frame
from tests.services.detection.stand_ins import make_detector

Q = timedelta(minutes=15)
TP = TopicPartition("frames", 0)


def record(offset: int, value: int) -> ConsumerRecord:
    payload = encode_inline(make_frame(T0 + offset * Q, value=value))
    return ConsumerRecord("frames", 0, -1, offset, 0, 0, b"COMS-1", payload, [], None, 6, len(payload), 0)


class ScriptedConsumer:
    """Hands out the scripted poll results in turn (then nothing, and stops the loop), recording each call."""

    def __init__(self, polls: list[list[ConsumerRecord]], log: list[str], owner: list[DetectorConsumer]) -> None:
        self.polls = deque(polls)
        self.log = log
        self.owner = owner
        self.listener: Any = None

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[ConsumerRecord]]:
        if self.listener is not None:  # the group join, on a poll that brings nothing yet
            self.listener.on_partitions_assigned([TP])
            self.listener = None
            return {}
        if not self.polls:
            self.owner[0].stop()
            return {}
        batch = self.polls.popleft()
        self.log.append(f"poll {[r.offset for r in batch]}")
        return {TP: batch} if batch else {}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    def committed(self, tp: TopicPartition) -> int | None:
        return None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        pass

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.log.append(f"commit {offsets[TP].offset}")

    def close(self) -> None:
        pass


class Acknowledged:
    def __init__(self) -> None:
        self.is_done = True

    def succeeded(self) -> bool:
        return True


class RecordingProducer:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None, **_: Any) -> Acknowledged:
        self.log.append(f"send {topic}")
        return Acknowledged()

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def run_scripted(
    tmp_path: Path, polls: list[list[ConsumerRecord]], monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], Detector]:
    log: list[str] = []
    owner: list[DetectorConsumer] = []
    monkeypatch.setattr(consumer_module, "group_consumer", lambda *a, **k: ScriptedConsumer(polls, log, owner))
    monkeypatch.setattr(consumer_module, "reliable_producer", lambda *a, **k: RecordingProducer(log))
    monkeypatch.setattr(consumer_module, "read_to_end", lambda *a, **k: iter(()))
    detector = make_detector(tmp_path)
    store_file = detector.store.path

    def stored_alerts() -> int:  # as another process (the feed) sees the store: committed rows only
        with sqlite3.connect(store_file) as db:
            return int(db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])

    started, processed = detector.score_ahead, detector.process_batch

    def score_ahead(frames: Any) -> Any:
        log.append(f"score {[int((f.time - T0) / Q) for f in frames]}")
        return started(frames)

    def process_batch(frames: Any, *args: Any) -> Any:
        log.append(f"process {[int((f.time - T0) / Q) for f in frames]}")
        return processed(frames, *args)

    monkeypatch.setattr(detector, "score_ahead", score_ahead)
    monkeypatch.setattr(detector, "process_batch", process_batch)
    consumer = DetectorConsumer(Settings(), detector, on_alert=lambda a: log.append(f"stored {stored_alerts()}"))
    owner.append(consumer)
    commit = consumer.consumer.commit

    def commit_offsets(offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        log.append(f"stored {stored_alerts()}")  # what a restart would find in the store
        commit(offsets)

    monkeypatch.setattr(consumer.consumer, "commit", commit_offsets)
    consumer.run()
    return log, detector


def test_batches_start_ahead_and_finish_in_poll_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    polls = [[record(0, 60), record(1, 60)], [record(2, 60)], [record(3, 60)], [record(4, 60)], [], []]
    log, _ = run_scripted(tmp_path, polls, monkeypatch)
    steps = [s for s in log if s.split()[0] in ("score", "process", "commit")]
    assert LOOKAHEAD == 2
    assert steps == [
        "score [0, 1]",
        "score [2]",
        "score [3]",  # three batches started before the first finishes
        "process [0, 1]",
        "commit 2",
        "score [4]",
        "process [2]",
        "commit 3",
        # Empty polls: the oldest batch finishes; the one behind it stays queued for the scoring workers.
        "process [3]",
        "commit 4",
        "process [4]",
        "commit 5",
    ]


def test_a_batch_alerts_are_committed_to_the_store_before_its_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Frames 4 and 5 are bright: two alerts in one batch, stored with one commit at the checkpoint.
    polls = [[record(i, 60) for i in range(4)], [record(4, 230), record(5, 230), record(6, 60)], []]
    log, detector = run_scripted(tmp_path, polls, monkeypatch)
    tail = log[log.index("process [4, 5, 6]") :]
    # Published after the store commit (each publication sees both alerts committed), offsets after that.
    assert [s for s in tail if s.split()[0] in ("send", "stored", "commit")] == [
        "send alerts",
        "send alerts",
        "stored 2",
        "stored 2",
        "stored 2",
        "commit 7",
    ]
    assert not detector.store.unpublished()
