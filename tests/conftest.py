"""Shared fixtures: a real Kafka-protocol broker (embedded Tansu) and per-test topic names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from satwatch.broker import EmbeddedBroker
from satwatch.services.config import Settings


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    """Settings pointing at the test broker, with topics and group unique to the test."""
    s = Settings()
    tag = uuid.uuid4().hex[:8]
    s.kafka.bootstrap_servers = broker.bootstrap_servers
    s.kafka.frames_topic = f"frames-{tag}"
    s.kafka.alerts_topic = f"alerts-{tag}"
    s.kafka.dead_letter_topic = f"dlq-{tag}"
    s.kafka.group_id = f"detector-{tag}"
    s.kafka.partitions = 1
    s.detector.state_dir = str(tmp_path / "state")
    return s
