"""``satwatch produce`` on real frames it must refuse: a corrupt time and a time reduced to 750 x 650 go to the
dead-letter topic, are reported as refused (never as published), and the stream goes on with the next frame."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from satwatch.cli import main
from satwatch.services.config import Settings
from satwatch.topics import DLQ_REASON, ensure_topics
from tests.helpers import real_time
from tests.producers.test_publisher import read_topic

CORRUPT, HALF, GOOD = "201103031245", "201103031300", "201103031315"


def at(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)


def land_three(directory: Path) -> None:
    """A time whose wv file is cut short, a time at half size, and a good time after both (KMA's folders)."""
    real_time(CORRUPT, directory / f"{CORRUPT}_image", truncate="wv")
    real_time(HALF, directory / f"{HALF}_image", size=(750, 650))
    real_time(GOOD, directory / f"{GOOD}_image")


def frame_times(settings: Settings, expect: int) -> list[datetime]:
    from satwatch.services.frames.codec import decode_meta

    return [decode_meta(m.value)[0].time for m in read_topic(settings, settings.kafka.frames_topic, expect)]


def reasons(settings: Settings, expect: int) -> list[bytes]:
    return [dict(m.headers)[DLQ_REASON] for m in read_topic(settings, settings.kafka.dead_letter_topic, expect)]


def test_archive_replay_refuses_bad_times_publishes_the_rest_and_exits_0(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    land_three(tmp_path / "archive")
    monkeypatch.setenv("SATWATCH_KAFKA__DEAD_LETTER_TOPIC", settings.kafka.dead_letter_topic)
    code = main(
        ["produce", "archive", "--archive", str(tmp_path / "archive"), "--bootstrap-servers"]
        + [settings.kafka.bootstrap_servers, "--frames-topic", settings.kafka.frames_topic]
    )
    out = capsys.readouterr().out
    assert code == 0  # refused input is on the dead-letter topic, counted and logged: not a failed replay
    assert (
        f"published 1 frame to {settings.kafka.frames_topic} at {settings.kafka.bootstrap_servers}; "
        f"refused 2 (sent to {settings.kafka.dead_letter_topic}, see the log)"
    ) in out
    assert frame_times(settings, 1) == [at(GOOD)]
    assert reasons(settings, 2) == [b"corrupt_png", b"wrong_shape"]


def _watch(settings: Settings, drop: Path, position: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "SATWATCH_KAFKA__DEAD_LETTER_TOPIC": settings.kafka.dead_letter_topic}
    env["PYTHONFAULTHANDLER"] = "1"  # a watcher that does not stop dumps its threads' stacks on SIGABRT
    argv = [sys.executable, "-m", "satwatch", "produce", "watch", "--dir", str(drop), "--position", str(position)]
    argv += ["--poll", "0.2", "--settle", "0.2", "--bootstrap-servers", settings.kafka.bootstrap_servers]
    argv += ["--frames-topic", settings.kafka.frames_topic]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _stop(proc: subprocess.Popen[str]) -> str:
    # SIGTERM, as a service manager stops it (the command treats it as Ctrl-C). Not SIGINT: a suite started in the
    # background by a shell (`sh -c 'make test &'`) hands its children an ignored SIGINT, which Python keeps.
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # say where it hangs: the stacks of every thread
        proc.send_signal(signal.SIGABRT)
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"the watcher did not stop within 120 s of SIGTERM:\n{out}")
    assert proc.returncode == 0 and "Traceback" not in out, out
    return out


def test_watch_refuses_bad_times_goes_on_and_a_restart_does_not_retry_them(settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings.kafka)
    drop, position = tmp_path / "drop", tmp_path / "state" / "watch.json"
    land_three(drop)
    proc = _watch(settings, drop, position)
    try:
        assert frame_times(settings, 1) == [at(GOOD)]  # the good time after the two bad ones
    finally:
        out = _stop(proc)
    assert reasons(settings, 2) == [b"corrupt_png", b"wrong_shape"]
    assert f"refused {at(CORRUPT):%Y-%m-%d %H:%M}Z (corrupt_png); sent to {settings.kafka.dead_letter_topic}" in out
    assert f"refused {at(HALF):%Y-%m-%d %H:%M}Z (wrong_shape); sent to {settings.kafka.dead_letter_topic}" in out
    assert "750 wide x 650 high" in out and "send the images at the native size" in out
    assert f"published {at(GOOD):%Y-%m-%d %H:%M}Z" in out
    assert f"published {at(CORRUPT):%Y-%m-%d %H:%M}Z" not in out and f"published {at(HALF):%Y-%m-%d %H:%M}Z" not in out
    kept = json.loads(position.read_text())
    assert kept["published"] == [at(GOOD).isoformat()]
    assert kept["refused"] == [at(CORRUPT).isoformat(), at(HALF).isoformat()]

    again = _watch(settings, drop, position)  # a restart neither dies on the refused times nor sends them again
    try:
        assert again.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "watching" not in again.stdout.readline():
            pass
        time.sleep(2.0)  # ten scans
    finally:
        out = _stop(again)
    assert "refused" not in out and "published 20" not in out
    assert len(read_topic(settings, settings.kafka.frames_topic, 1)) == 1
    assert len(read_topic(settings, settings.kafka.dead_letter_topic, 2)) == 2
