"""A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, with a throwaway config."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from satwatch.broker import free_port, wait_for_port
from tests.helpers import stop_process

CONFIG = """\
global:
  resolve_timeout: 5m
route:
  receiver: operators
  group_by: [satellite, kind]
  group_wait: 1s
receivers:
  - name: operators
"""


class Alertmanager:
    def __init__(self, url: str) -> None:
        self.url = url

    def alerts(self, active: bool = True) -> list[dict[str, Any]]:
        q = "active=true&silenced=false&inhibited=false" if active else ""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{q}", timeout=5) as resp:
            return list(json.loads(resp.read()))

    def wait_for(self, pred: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.alerts()
            if pred(got) or time.monotonic() > deadline:
                return got
            time.sleep(0.1)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if exe is None:
        pytest.skip("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(CONFIG)
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={cfg}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "alertmanager.log", "wb"),  # noqa: SIM115
    )
    try:
        wait_for_port("127.0.0.1", port)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:  # the port opens a little before the API answers
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield Alertmanager(url)
    finally:
        stop_process(proc)
