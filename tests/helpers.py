"""Small builders shared by tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from satwatch.services.frames.frame import CHANNELS, Frame


def make_frame(
    time: datetime, value: int = 100, shape: tuple[int, int] = (300, 375), satellite: str = "COMS-1"
) -> Frame:
    rng = np.random.default_rng(int(time.timestamp()) % 2**32)
    data = np.clip(rng.normal(value, 10, size=(len(CHANNELS), *shape)), 0, 255).astype(np.uint8)
    return Frame(satellite, time, CHANNELS, data)


T0 = datetime(2024, 7, 1, tzinfo=UTC)


def shared_data(*parts: str) -> Path:
    """A folder of the real data beside the repository (``../shared/data/...``); the test skips when absent."""
    import pytest

    path = Path(__file__).resolve().parents[2].joinpath("shared", "data", *parts)
    if not path.is_dir():
        pytest.skip(f"real data folder {'/'.join(('shared', 'data', *parts))} is not beside the repository")
    return path


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Ask a server the test started to stop (SIGTERM); kill it when it has not stopped within ``grace`` s."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def real_time(stamp: str, dest: Path, size: tuple[int, int] | None = None, truncate: str | None = None) -> list[Path]:
    """Copy one real COMS-1 time (YYYYMMDDHHMM) of the study's raw images into ``dest``, its four channel PNGs.

    ``size`` (width, height) resizes every channel, as a user's reduced copies would be; ``truncate`` names a
    channel whose file is cut in half, as a copy interrupted mid-way leaves it.
    """
    from PIL import Image

    src = shared_data("study", "raw_images") / f"{stamp}_image"
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for path in sorted(src.glob("*.png")):
        target = dest / path.name
        if size is not None:
            with Image.open(path) as im:
                im.resize(size, Image.Resampling.BILINEAR).save(target, compress_level=1)
        elif truncate is not None and f"_{truncate}_" in path.name:
            data = path.read_bytes()
            target.write_bytes(data[: len(data) // 2])
        else:
            target.write_bytes(path.read_bytes())
        out.append(target)
    return out


@contextlib.contextmanager
def running_alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    """A real Alertmanager (Debian's prometheus-alertmanager) on ``config`` at a free loopback port, ready to
    answer; yields its base URL. Skips the test where it is not installed."""
    import pytest

    from satwatch.broker import free_port, wait_for_port

    exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if exe is None:
        pytest.skip("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={config}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "alertmanager.log", "wb"),  # noqa: SIM115
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
        yield url
    finally:
        stop_process(proc)
