"""A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, with a throwaway config."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import running_alertmanager

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
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(CONFIG)
    with running_alertmanager(cfg, tmp_path) as url:
        yield Alertmanager(url)
