"""Running an in-process detector consumer over the test broker until it has handled a number of frames."""

from __future__ import annotations

import threading
import time

from satwatch.consumers.detector import DetectorConsumer
from satwatch.services.config import Settings
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.services.detection.router import FrameDetector, build_frame_detector


def run_detector(
    settings: Settings,
    expected_frames: int,
    metrics: DetectorMetrics | None = None,
    detector: FrameDetector | None = None,
    timeout: float = 120.0,
    exact: bool = False,
) -> DetectorConsumer:
    """Run the configured detector (or ``detector``) until it has handled ``expected_frames`` valid frames,
    then stop it; fails when it handled fewer (or, ``exact``, any other number)."""
    detector = detector or build_frame_detector(settings, metrics)
    seen = {"n": 0}
    consumer = DetectorConsumer(settings, detector, on_outcome=lambda o: seen.__setitem__("n", seen["n"] + 1))
    worker = threading.Thread(target=consumer.run, kwargs={"max_idle_seconds": 20})
    worker.start()
    deadline = time.monotonic() + timeout
    while seen["n"] < expected_frames and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    consumer.stop()
    worker.join(30)
    assert not worker.is_alive(), "the detector did not stop"
    handled = seen["n"] == expected_frames if exact else seen["n"] >= expected_frames
    assert handled, f"detector handled {seen['n']} of {expected_frames} frames"
    return consumer
