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
