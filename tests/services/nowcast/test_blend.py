"""analog_blend: persistence corrected by the analogs with per-lead weights fitted on a development period."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from satwatch.services.frames.frame import Frame
from satwatch.services.frames.profiles import get_profile
from satwatch.services.nowcast.blend import (
    BlendFit,
    BlendWeights,
    analog_blend,
    analog_flow_blend,
)
from satwatch.services.nowcast.forecast import MemorySource
from satwatch.services.nowcast.run import Nowcaster, NowcastOptions

PROFILE = get_profile("COMS-1")
LEAD = timedelta(hours=1)


def test_fit_recovers_the_weights_that_made_the_truth() -> None:
    rng = np.random.default_rng(0)
    fit = BlendFit()
    for _ in range(5):
        latest = rng.uniform(0, 255, (40, 50))
        tendency = rng.normal(0, 10, latest.shape)
        composite = rng.uniform(0, 255, latest.shape)
        observed = latest + 0.4 * tendency + 0.3 * (composite - latest) + rng.normal(0, 1, latest.shape)
        fit.add(LEAD, latest, tendency, composite, observed)
    a, b = fit.weights().at(LEAD)
    assert a == pytest.approx(0.4, abs=0.02) and b == pytest.approx(0.3, abs=0.02)
    assert fit.cases == {60: 5}


def test_fit_keeps_the_composite_weight_a_blend() -> None:
    """An observed change that overshoots the composite would ask for b > 1: kept at 1, not extrapolated."""
    rng = np.random.default_rng(1)
    latest = rng.uniform(0, 255, (30, 30))
    composite = rng.uniform(0, 255, latest.shape)
    fit = BlendFit()
    fit.add(LEAD, latest, np.zeros_like(latest), composite, latest + 1.5 * (composite - latest))
    assert fit.weights().at(LEAD)[1] == 1.0


def test_weights_round_trip_and_nearest_lead() -> None:
    w = BlendWeights({15: (0.1, 0.0), 60: (0.2, 0.3)}, "test")
    again = BlendWeights.from_json(w.to_json())
    assert again == w
    assert again.at(timedelta(minutes=45)) == (0.2, 0.3)  # nearest listed lead
    assert BlendWeights().at(LEAD) == (0.0, 0.0)


def test_blend_spans_persistence_to_the_analogs(stream: list[Frame], day_before: MemorySource) -> None:
    """Zero weights give persistence exactly; a = 1 gives analog_change and b = 1 the analog composite."""
    source = MemorySource(stream)
    options = NowcastOptions(methods=("persistence", "analog", "analog_change"), k=2, hours=1)
    run = Nowcaster(source, PROFILE, options, past=day_before).issue(stream[34].time)
    data = run.input
    zero = analog_blend(data, BlendWeights({m: (0.0, 0.0) for m in (15, 60)}))
    assert np.array_equal(zero.fields, run.forecasts["persistence"].fields)
    change = analog_blend(data, BlendWeights({15: (1.0, 0.0)}))
    assert np.abs(change.fields - run.forecasts["analog_change"].fields).max() <= 1e-3
    comp = analog_blend(data, BlendWeights({15: (0.0, 1.0)}))
    assert np.abs(comp.fields - run.forecasts["analog"].fields).max() <= 1e-3
    # through the Nowcaster, the weights given in the options are the ones used
    blended = NowcastOptions(methods=("analog_blend",), k=2, hours=1, blend=BlendWeights({15: (0.0, 1.0)}))
    again = Nowcaster(source, PROFILE, blended, past=day_before).issue(stream[34].time)
    assert np.array_equal(again.forecasts["analog_blend"].fields, comp.fields)


def test_flow_blend_starts_from_the_optical_flow_forecast(stream: list[Frame], day_before: MemorySource) -> None:
    """Zero weights give optical flow exactly; the weights given for it in the options are the ones used."""
    pytest.importorskip("pysteps", reason="the [nowcast] extra is not installed")
    source = MemorySource(stream)
    zero = BlendWeights({15: (0.0, 0.0)})
    options = NowcastOptions(
        methods=("optical_flow", "analog", "analog_flow_blend"), k=2, hours=0.5, flow_blend=zero, blend=None
    )
    run = Nowcaster(source, PROFILE, options, past=day_before).issue(stream[34].time)
    assert np.array_equal(run.forecasts["analog_flow_blend"].fields, run.forecasts["optical_flow"].fields)
    full = analog_flow_blend(run.input, BlendWeights({15: (0.0, 1.0)}))
    assert np.abs(full.fields - run.forecasts["analog"].fields).max() <= 1e-3
