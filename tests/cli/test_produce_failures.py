"""``satwatch produce`` never reports success over lost frames: it exits non-zero with the count."""

from __future__ import annotations

from typing import Any

import pytest

from satwatch.broker import EmbeddedBroker, free_port
from satwatch.cli import main
from satwatch.services.config import KafkaSettings, Settings


def test_frames_that_cannot_be_sent_make_a_non_zero_exit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import satwatch.cli.produce as produce_cli
    import satwatch.producers.publisher as publisher_module

    real = publisher_module.make_producer
    quick = {"max_block_ms": 1000, "request_timeout_ms": 500, "delivery_timeout_ms": 1000, "linger_ms": 0}
    own = EmbeddedBroker().start()  # reachable for the topic set-up and the first producer, then gone
    dead = f"127.0.0.1:{free_port()}"  # where every replacement producer looks: nobody listens
    made: list[Any] = []

    def unreachable(kafka: KafkaSettings, **overrides: Any) -> Any:
        if not made:
            made.append(real(kafka, **quick, **overrides))
            own.stop()
            return made[0]
        target = kafka.model_copy(update={"bootstrap_servers": dead})
        return real(target, **quick, bootstrap_timeout_ms=1000, **overrides)

    monkeypatch.setattr(produce_cli, "make_producer", unreachable)
    monkeypatch.setattr(publisher_module, "make_producer", unreachable)
    code = main(
        [
            "produce",
            "simulator",
            "--days",
            str(3 / 96),  # three frames
            "--bootstrap-servers",
            own.bootstrap_servers,
            "--frames-topic",
            settings.kafka.frames_topic,
        ]
    )
    own.stop()
    captured = capsys.readouterr()
    assert code == 1
    assert f"error: 3 of 3 messages could not be published to {settings.kafka.frames_topic}" in captured.err
    assert "published 3 frames" not in captured.out


def test_kafka_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from kafka.errors import KafkaTimeoutError

    import satwatch.cli.broker as broker_cli

    def unreachable(args: object) -> int:
        raise KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1")

    monkeypatch.setattr(broker_cli, "run", unreachable)
    assert main(["broker"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("satwatch broker: error: Kafka: ") and "Unable to bootstrap" in err and "\n" not in err


def test_no_progress_bar_when_not_on_a_terminal(settings: Settings) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "satwatch", "produce", "simulator", "--days", str(2 / 96)]
        + ["--bootstrap-servers", settings.kafka.bootstrap_servers, "--frames-topic", settings.kafka.frames_topic],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "published 2 frames" in done.stdout
    assert "frame/s" not in done.stderr and "simulator:" not in done.stderr  # no tqdm bar in a log file


def test_a_live_frame_kafka_never_took_is_not_recorded_so_a_restart_sends_it(settings: Settings) -> None:
    from satwatch.cli.produce import publish_live
    from satwatch.producers.interface import FrameStream
    from satwatch.producers.publisher import FramePublisher, make_producer
    from satwatch.services.simulator.scene import SceneSimulator, SimConfig
    from satwatch.topics import ensure_topics

    quick = {"max_block_ms": 1000, "request_timeout_ms": 500, "delivery_timeout_ms": 1000, "linger_ms": 0}
    own = EmbeddedBroker().start()  # takes the first frame, then goes away
    kafka = settings.kafka.model_copy(update={"bootstrap_servers": own.bootstrap_servers})
    ensure_topics(kafka)
    dead = kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    publisher = FramePublisher(
        make_producer(kafka, **quick),
        kafka,
        source="watch",
        producer_factory=lambda: make_producer(dead, **quick, bootstrap_timeout_ms=1000),
        max_attempts=2,
    )
    first, second = list(SceneSimulator(SimConfig(days=2 / 96)).frames())

    def arriving() -> Any:
        yield first
        own.stop()
        yield second

    handled: list[Any] = []
    stream = FrameStream("watch", arriving(), None, live=True, on_handled=lambda item, refused: handled.append(item))
    try:
        assert publish_live(stream, publisher, kafka.dead_letter_topic) == 2
    finally:
        publisher.close()
        own.stop()
    # The first frame is recorded as published; the second, never acknowledged, is left for the restart.
    assert [item.time for item in handled] == [first.time] and publisher.failed == 1
