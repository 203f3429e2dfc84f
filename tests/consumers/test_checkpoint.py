"""The checkpoint's order, tested without a broker: durable state, each sink in turn, then the commit."""

from __future__ import annotations

import pytest
from kafka import OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError, KafkaError

from satwatch.consumers.checkpoint import Checkpoint
from satwatch.services.detection.metrics import DetectorMetrics

OFFSETS = {TopicPartition("frames", 0): OffsetAndMetadata(7, "", -1)}


class Recording:
    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    def flush(self) -> None:
        if self.fail:
            raise KafkaError(f"{self.name} could not be sent")
        self.log.append(self.name)


def checkpoint(log: list[str], alerts_fail: bool = False, commit_fails: bool = False) -> Checkpoint:
    def commit(offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if commit_fails:
            raise CommitFailedError("rebalanced")
        log.append(f"commit {offsets[TopicPartition('frames', 0)].offset}")

    sinks = [Recording(log, "dead letters"), Recording(log, "alerts", alerts_fail)]
    return Checkpoint(lambda: log.append("journal"), sinks, commit, DetectorMetrics())


def test_state_then_sinks_in_order_then_commit() -> None:
    log: list[str] = []
    checkpoint(log).complete(OFFSETS)
    assert log == ["journal", "dead letters", "alerts", "commit 7"]


def test_nothing_is_committed_when_a_sink_cannot_flush() -> None:
    log: list[str] = []
    with pytest.raises(KafkaError, match="alerts could not be sent"):
        checkpoint(log, alerts_fail=True).complete(OFFSETS)
    assert log == ["journal", "dead letters"]  # the batch is read again; its effects are idempotent


def test_a_refused_commit_is_counted_not_raised() -> None:
    log: list[str] = []
    cp = checkpoint(log, commit_fails=True)
    cp.complete(OFFSETS)
    assert log == ["journal", "dead letters", "alerts"]
    assert cp._metrics.errors.labels("commit")._value.get() == 1


def test_an_empty_batch_commits_nothing() -> None:
    log: list[str] = []
    checkpoint(log).complete({})
    assert log == ["journal", "dead letters", "alerts"]
