"""The operator's surface of the command line: UTC ISO log stamps, JSON logs, one-line errors."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

from satwatch.cli import main
from satwatch.services.config import Settings

LOG = (
    "from satwatch.cli import configure_logging; import logging; configure_logging({fmt!r}); "
    "logging.getLogger('satwatch.x').warning('frame %s refused', 7)"
)


def _stderr(fmt: str) -> str:
    done = subprocess.run([sys.executable, "-c", LOG.format(fmt=fmt)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr.strip()


def test_text_logs_carry_utc_iso_timestamps() -> None:
    line = _stderr("text")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING satwatch\.x: frame 7 refused", line), line


def test_json_logs_are_one_object_per_line() -> None:
    entry = json.loads(_stderr("json"))
    assert entry["level"] == "WARNING" and entry["logger"] == "satwatch.x" and entry["message"] == "frame 7 refused"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


def test_busy_metrics_port_is_a_one_line_error(settings: Settings, capsys) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(
            [
                "detect",
                "--bootstrap-servers",
                settings.kafka.bootstrap_servers,
                "--frames-topic",
                settings.kafka.frames_topic,
                "--metrics-port",
                str(port),
                "--state-dir",
                settings.detector.state_dir,
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert (
        err == f"satwatch detect: error: metrics port 127.0.0.1:{port} is already in use; choose another with "
        "--metrics-port"
    )


def test_unreachable_kafka_is_a_one_line_error(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import satwatch.cli.detect as detect_cli
    from satwatch import topics
    from satwatch.broker import free_port

    dead = f"127.0.0.1:{free_port()}"
    real = topics.ensure_topics
    monkeypatch.setattr(detect_cli, "ensure_topics", lambda kafka: real(kafka, timeout=0.5))  # not 30 s
    assert main(["detect", "--bootstrap-servers", dead]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"satwatch detect: error: cannot reach Kafka at {dead}")
    assert "start one with 'satwatch broker'" in err
