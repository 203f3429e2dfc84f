"""Alerts count as published only once Kafka acknowledged them; failed sends go again on a new producer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kafka.errors import KafkaError, UnknownProducerIdError

import satwatch.consumers.sinks as sinks_module
from satwatch.consumers.detector import DetectorConsumer
from satwatch.consumers.sinks import ALERT_SEND_ATTEMPTS
from satwatch.services.config import Settings
from satwatch.services.detection.metrics import DetectorMetrics


class Future:
    def __init__(self, ok: bool) -> None:
        self.is_done = True
        self.ok = ok
        self.exception = None if ok else UnknownProducerIdError()

    def succeeded(self) -> bool:
        return self.ok


class Producer:
    """Acknowledges every send, or none (as the idempotent producer does after a broker restart)."""

    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.sent: list[bytes] = []

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None, **_: Any) -> Future:
        self.sent.append(key or b"")
        return Future(self.ok)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


class Store:
    def __init__(self) -> None:
        self.published: list[str] = []

    def mark_published(self, ids: list[str]) -> None:
        self.published.extend(ids)

    def unpublished(self) -> list[Any]:
        return []


def consumer_with(settings: Settings, producers: list[Producer], monkeypatch: pytest.MonkeyPatch) -> Any:
    metrics = DetectorMetrics()
    detector = SimpleNamespace(metrics=metrics, threshold=1.0, store=Store())
    consumer = DetectorConsumer(settings, detector)  # type: ignore[arg-type]
    consumer.consumer.close()
    consumer.producer.close(1)
    queue = list(producers)
    consumer.producer = queue.pop(0)
    monkeypatch.setattr(consumer, "_make_producer", lambda: queue.pop(0))
    monkeypatch.setattr(sinks_module, "alert_to_json", lambda alert: alert.id.encode())
    monkeypatch.setattr(sinks_module.time, "sleep", lambda seconds: None)
    shown: list[str] = []
    consumer.on_alert = lambda alert: shown.append(alert.id)
    return consumer, detector, shown


def test_alerts_unacknowledged_after_a_broker_restart_are_sent_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, fresh = Producer(ok=False), Producer(ok=True)
    consumer, detector, shown = consumer_with(settings, [broken, fresh], monkeypatch)
    alerts = [SimpleNamespace(id=f"COMS-1:2024070106{m:02d}Z:anomaly", satellite="COMS-1") for m in (0, 15)]
    consumer.alerts.publish(alerts)
    assert len(broken.sent) == 2 and len(fresh.sent) == 2
    assert fresh.sent == [b"COMS-1", b"COMS-1"]  # keyed by satellite: one partition, in order
    assert detector.store.published == [a.id for a in alerts]  # marked once, after the acknowledgement
    assert shown == [a.id for a in alerts]  # shown once
    assert detector.metrics.errors.labels("alert_publish")._value.get() == 1


def test_alerts_never_acknowledged_stay_unpublished_and_stop_the_batch(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    producers = [Producer(ok=False) for _ in range(ALERT_SEND_ATTEMPTS + 1)]
    consumer, detector, shown = consumer_with(settings, producers, monkeypatch)
    with pytest.raises(KafkaError, match="1 alerts could not be published"):
        consumer.alerts.publish([SimpleNamespace(id="COMS-1:202407010600Z:anomaly", satellite="COMS-1")])
    assert detector.store.published == [] and shown == []
    assert consumer.published_ids == set()
