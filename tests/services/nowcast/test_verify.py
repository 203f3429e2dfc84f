"""Scores by lead time with pysteps, on real COMS frames."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import shrink
from satwatch.services.nowcast.verify import COLD_CLOUD_K, Scoreboard, cold_cloud_grey, skill_table
from satwatch.services.simulator.scene import count_to_kelvin
from tests.helpers import shared_data

pytest.importorskip("pysteps", reason="the [nowcast] extra is not installed")


def test_cold_cloud_threshold_is_235_kelvin_on_the_grey_scale() -> None:
    grey = cold_cloud_grey()
    assert 195 < grey < 205  # colder is brighter
    assert float(count_to_kelvin(grey, "ir01")) == pytest.approx(COLD_CLOUD_K, abs=1e-6)


def test_scores_tell_a_perfect_forecast_from_an_hour_old_frame() -> None:
    archive = Archive(shared_data("study", "raw_images"), "COMS-1")
    now, later = (shrink(archive.load(t)).data[0] for t in (archive.times[0], archive.times[4]))
    assert (later >= cold_cloud_grey()).mean() > 0.01, "real frames hold cold cloud to score"
    board = Scoreboard()
    lead = timedelta(hours=1)
    board.add("perfect", lead, later.astype(np.float32), later)
    board.add("persistence", lead, now.astype(np.float32), later)
    board.add("nothing", lead, np.full(later.shape, np.nan, np.float32), later)  # no forecast: not a case
    perfect, persistence = board.table()
    assert (perfect.csi, perfect.fss, perfect.mae_k, perfect.cell_similarity) == (1.0, 1.0, 0.0, 1.0)
    assert 0 < persistence.csi < 1 and 0 < persistence.fss < 1
    assert persistence.mae_k > 1.0 and persistence.cell_similarity < 1.0
    assert [s.method for s in board.table()] == ["perfect", "persistence"]
    assert "1:00" in skill_table(board.table())


def test_scores_accumulate_over_cases_not_average_ratios() -> None:
    board = Scoreboard()
    lead = timedelta(minutes=15)
    hot = np.zeros((40, 40), np.float32)
    cold = np.full((40, 40), 230.0, np.float32)
    board.add("m", lead, cold, cold)  # 1600 hits
    board.add("m", lead, cold, hot)  # 1600 false alarms
    (s,) = board.table()
    assert s.cases == 2
    assert s.csi == pytest.approx(0.5)  # pooled: 1600 hits / (1600 hits + 1600 false alarms)
    board.add("m", lead, hot, hot)  # no event forecast or seen: per-case CSI is undefined, pooled is unmoved
    (s,) = board.table()
    assert s.csi == pytest.approx(0.5) and s.cases == 3
