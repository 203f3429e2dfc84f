"""pysteps' optical flow on real COMS frames: it finds a known motion, and persistence is what it repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import shrink
from satwatch.services.nowcast.forecast import NowcastInput
from satwatch.services.nowcast.interface import get_method
from tests.helpers import shared_data

pytest.importorskip("pysteps", reason="the [nowcast] extra is not installed")

CADENCE = timedelta(minutes=15)


@pytest.fixture(scope="module")
def real_plane() -> np.ndarray:
    """One real COMS frame at the study size, 4 channels."""
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    return shrink(archive.load(archive.times[0])).data


def _moving(plane: np.ndarray, steps: int, dx: int) -> np.ndarray:
    """The frame moved ``dx`` pixels right per step, ``steps`` times (edges wrap; the test ignores them)."""
    return np.stack([np.roll(plane, dx * i, axis=-1) for i in range(steps)])


# Lucas-Kanade recovers the 2 px/step motion of real cloud texture (2.00); pysteps' DARTS, built for radar
# rain fields, finds under half of it (0.88) here, so it is only held to beating persistence.
@pytest.mark.parametrize(("method", "bound"), [("optical_flow", 0.5), ("optical_flow_darts", 0.9)])
def test_optical_flow_carries_real_clouds_along_a_known_motion(
    real_plane: np.ndarray, method: str, bound: float
) -> None:
    frames = _moving(real_plane, 6, 2)
    t0 = datetime(2011, 3, 3, 6, tzinfo=UTC)
    times = [t0 + CADENCE * i for i in range(6)]
    leads = (CADENCE, 2 * CADENCE, 4 * CADENCE)
    data = NowcastInput(times, frames, ("ir01", "ir02", "swir", "wv"), leads, CADENCE)
    fc = get_method(method)(data)
    persisted = get_method("persistence")(data)
    inner = np.s_[:, 20:-20, 40:-40]  # away from the wrapped edge
    for i, (lead, steps) in enumerate(zip(leads, (1, 2, 4), strict=True)):
        truth = np.roll(real_plane, 2 * (5 + steps), axis=-1).astype(np.float32)
        err = np.abs(fc.fields[i] - truth)[inner].mean()
        err_persist = np.abs(persisted.fields[i] - truth)[inner].mean()
        assert err < bound * err_persist, f"{method} at {lead}: {err:.2f} vs persistence {err_persist:.2f}"
    assert np.isfinite(fc.fields).all()  # pixels advected in from outside are filled, never NaN


def test_persistence_repeats_the_latest_frame(real_plane: np.ndarray) -> None:
    frames = _moving(real_plane, 3, 5)
    t0 = datetime(2011, 3, 3, 6, tzinfo=UTC)
    data = NowcastInput([t0, t0 + CADENCE, t0 + 2 * CADENCE], frames, ("a", "b", "c", "d"), (CADENCE,) * 1, CADENCE)
    fc = get_method("persistence")(data)
    assert np.array_equal(fc.fields[0], frames[-1].astype(np.float32))
