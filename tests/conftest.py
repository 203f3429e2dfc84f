"""Shared fixtures: a real Kafka-protocol broker (embedded Tansu) and per-test topic names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from satwatch.broker import EmbeddedBroker
from satwatch.services.config import Settings
from satwatch.services.models.modelcard import packaged_model_dir


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    """Settings pointing at the test broker, with topics and group unique to the test.

    The tests stream the procedural simulator, so they serve its model set (the shipped root); COMS-1's own
    set (autoencoder v2, for real imagery) is what a test that clears ``model_dir`` gets.
    """
    s = Settings()
    s.detector.model_dir = str(packaged_model_dir())
    tag = uuid.uuid4().hex[:8]
    s.kafka.bootstrap_servers = broker.bootstrap_servers
    s.kafka.frames_topic = f"frames-{tag}"
    s.kafka.alerts_topic = f"alerts-{tag}"
    s.kafka.dead_letter_topic = f"dlq-{tag}"
    s.kafka.group_id = f"detector-{tag}"
    s.kafka.partitions = 1
    s.detector.state_dir = str(tmp_path / "state")
    return s
