"""A poll batch's durable end, in the one order that makes at-least-once delivery idempotent.

1. The detector's own state (index journal, frame signatures) is made durable: a restart finds every window
   the batch added.
2. Each sink is flushed in turn: dead letters, then alerts, each alert marked published in the store only
   once Kafka acknowledged it.
3. Only then are the batch's offsets committed. If anything before fails, nothing is committed: the batch is
   read again, and alert ids, store and index absorb the repetition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from kafka import OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError

from satwatch.consumers.sinks import Sink
from satwatch.services.detection.metrics import DetectorMetrics

log = logging.getLogger(__name__)

Offsets = dict[TopicPartition, OffsetAndMetadata]


class Checkpoint:
    """Completes batches: durable state, then the sinks in order, then the offset commit."""

    def __init__(
        self,
        durable: Callable[[], None],
        sinks: Sequence[Sink],
        commit: Callable[[Offsets], None],
        metrics: DetectorMetrics,
    ) -> None:
        self._durable = durable
        self._sinks = list(sinks)
        self._commit = commit
        self._metrics = metrics

    def complete(self, offsets: Offsets) -> None:
        """Make the batch durable and commit its offsets; raises (committing nothing) if a sink cannot flush."""
        self._durable()
        for sink in self._sinks:
            sink.flush()
        if not offsets:
            return
        try:
            self._commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced under us (a broker restart, a slow batch): the partitions come back through
            # the rebalance listener and are re-read from the last commit; effects are idempotent.
            self._metrics.errors.labels("commit").inc()
            log.warning("offset commit refused (%s); the batch will be read again after the rebalance", exc)
