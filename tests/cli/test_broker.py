"""``satwatch broker`` as an operator runs it: SIGTERM stops its Tansu child too, it exits when Tansu dies,
and a taken port is a one-line error rather than a "ready" over someone else's broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from satwatch.broker import free_port


def start(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "satwatch", "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "broker ready" in line, line + (proc.stderr.read() if proc.stderr else "")
    return proc


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        pytest.skip("needs Linux /proc")
    return [int(c) for c in path.read_text().split()]


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_sigterm_stops_the_tansu_child_too() -> None:
    proc = start(free_port())
    (tansu,) = children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert gone(tansu)


def test_exits_non_zero_when_tansu_dies() -> None:
    proc = start(free_port())
    (tansu,) = children(proc.pid)
    os.kill(tansu, signal.SIGKILL)
    try:
        code = proc.wait(20)
    finally:
        proc.kill()
    assert code == 1
    assert proc.stderr is not None and "the Tansu broker exited" in proc.stderr.read()


def test_busy_port_is_a_one_line_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "satwatch", "broker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"satwatch broker: error: port 127.0.0.1:{port} is already in use (another broker?); stop it or choose --port"
    )
    assert "ready" not in done.stdout


def test_without_port_it_listens_where_the_clients_dial() -> None:
    port = free_port()
    env = dict(os.environ, SATWATCH_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "satwatch", "broker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"broker ready: --bootstrap-servers 127.0.0.1:{port}" in line, line
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
