"""SIGTERM stops a long-running command as Ctrl-C does: its own cleanup runs (no traceback, no kill)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from satwatch.broker import EmbeddedBroker


def test_produce_watch_stops_cleanly_on_sigterm(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = {**os.environ, "SATWATCH_DETECTOR__STATE_DIR": str(tmp_path / "state")}
    argv = [sys.executable, "-m", "satwatch", "produce", "watch", "--dir", str(tmp_path)]
    proc = subprocess.Popen(
        [*argv, "--bootstrap-servers", broker.bootstrap_servers, "--frames-topic", "sigterm-frames"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until it is watching, not still importing
        line = proc.stdout.readline()
        if "watching" in line or not line:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out  # as after Ctrl-C: the command says "stopped" and exits cleanly
    assert "stopped" in out and "Traceback" not in out
