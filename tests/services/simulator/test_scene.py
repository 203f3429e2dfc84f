"""Tests of the scene simulator: determinism, physics-like channel relations, events and archive output."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import CHANNELS, Frame
from satwatch.services.simulator.interface import EVENT_KINDS, FAULT_KINDS
from satwatch.services.simulator.scene import (
    SceneSimulator,
    SimConfig,
    SimEvent,
    count_to_kelvin,
    kelvin_to_count,
    load_labels,
    save_labels,
    write_archive,
)

SMALL = SimConfig(seed=11, width=120, height=139, start=datetime(2024, 7, 1, tzinfo=UTC), days=3.0)


def _frames(cfg: SimConfig, n: int | None = None) -> list[Frame]:
    out = []
    for i, f in enumerate(SceneSimulator(cfg).frames()):
        if n is not None and i >= n:
            break
        out.append(f)
    return out


@pytest.fixture(scope="module")
def with_events() -> tuple[SceneSimulator, list[Frame]]:
    sim = SceneSimulator(SMALL)
    return sim, list(sim.frames())


@pytest.fixture(scope="module")
def without_events() -> list[Frame]:
    return _frames(replace(SMALL, events=False))


def test_same_seed_gives_identical_bytes_and_other_seed_differs() -> None:
    cfg = replace(SMALL, days=0.25)
    a, b = _frames(cfg), _frames(cfg)
    assert len(a) == cfg.n_frames == 24
    assert all(x.data.tobytes() == y.data.tobytes() and x.time == y.time for x, y in zip(a, b, strict=True))
    c = _frames(replace(cfg, seed=12))
    assert a[0].data.tobytes() != c[0].data.tobytes()


def test_geography_fixes_the_coastline_and_keeps_the_seeds_weather() -> None:
    cfg = replace(SMALL, days=0.1, events=False)
    own, other = SceneSimulator(cfg), SceneSimulator(replace(cfg, seed=12))
    shared = SceneSimulator(replace(cfg, seed=12, geography=cfg.seed))
    # The coastline is seed 11's ...
    assert np.array_equal(shared._land, own._land) and np.array_equal(shared._elev, own._elev)
    assert not np.array_equal(other._land, own._land)
    # ... and the weather is seed 12's: its cloud forcing and wind are untouched by the borrowed coastline.
    assert np.array_equal(shared._spec, other._spec) and shared._steer == other._steer
    assert SceneSimulator(replace(cfg, geography=cfg.seed))._land.tobytes() == own._land.tobytes()
    assert SimConfig.from_json(replace(cfg, geography=3).to_json()).geography == 3


def test_frames_restart_from_the_first_frame() -> None:
    sim = SceneSimulator(replace(SMALL, days=0.1))
    first = [f.data.copy() for f in sim.frames()]
    second = [f.data for f in sim.frames()]
    assert all(np.array_equal(x, y) for x, y in zip(first, second, strict=True))


def test_frame_shape_times_and_channels() -> None:
    cfg = replace(SMALL, days=0.1, cadence_minutes=10)
    sim = SceneSimulator(cfg)
    frames = list(sim.frames())
    assert [f.time for f in frames] == sim.times
    assert all(b - a == timedelta(minutes=10) for a, b in zip(sim.times, sim.times[1:], strict=False))
    f = frames[0]
    assert f.channels == CHANNELS and f.data.shape == (4, 139, 120) and f.data.dtype == np.uint8
    assert f.satellite == "COMS-1"


def test_weather_evolves_but_slowly(without_events: list[Frame]) -> None:
    ir = [f.data[0].astype(float) for f in without_events[:60]]
    step = np.mean([np.abs(b - a).mean() for a, b in zip(ir, ir[1:], strict=False)])
    far = np.abs(ir[-1] - ir[0]).mean()
    assert step > 0.5  # clouds move
    assert far > 2 * step  # but consecutive frames are much closer than frames 15 hours apart


def test_ir02_tracks_ir01_and_wv_is_smoother(without_events: list[Frame]) -> None:
    for f in without_events[::24]:
        ir1, ir2, wv = (f.data[i].astype(float) for i in (0, 1, 3))
        assert np.corrcoef(ir1.ravel(), ir2.ravel())[0, 1] > 0.9
        # Split window: ir02 is a little colder (brighter) than ir01 on average, never wildly.
        assert 0 < (ir2 - ir1).mean() < 15

        def grad_energy(x: np.ndarray) -> float:
            return float((np.diff(x, axis=0) ** 2).mean() + (np.diff(x, axis=1) ** 2).mean())

        assert grad_energy(wv) < 0.5 * grad_energy(ir1)
        # Water vapour channel: colder (brighter) than the window channel overall.
        assert wv.mean() > ir1.mean()


def test_swir_has_a_diurnal_cycle(without_events: list[Frame]) -> None:
    # Local noon at 128 E is about 03:30 UTC; local midnight about 15:30 UTC.
    day = [f.data[2].mean() for f in without_events if 2 <= f.time.hour < 5]
    night = [f.data[2].mean() for f in without_events if 14 <= f.time.hour < 17]
    ir_day = [f.data[0].mean() for f in without_events if 2 <= f.time.hour < 5]
    ir_night = [f.data[0].mean() for f in without_events if 14 <= f.time.hour < 17]
    # Reflected sunlight makes swir look warm (dark) by day; ir01 changes far less.
    swir_change = np.mean(night) - np.mean(day)
    assert swir_change > 8
    assert swir_change > 3 * abs(np.mean(ir_night) - np.mean(ir_day))


def test_events_are_planned_quiet_separated_and_cover_every_kind(
    with_events: tuple[SceneSimulator, list[Frame]],
) -> None:
    sim, _ = with_events
    assert {e.kind for e in sim.events} == set(EVENT_KINDS)
    assert sim.events[0].start >= sim.times[0] + timedelta(hours=6)
    for a, b in zip(sim.events, sim.events[1:], strict=False):
        assert b.start - a.end >= timedelta(hours=2)
    for e in sim.events:
        x0, y0, x1, y1 = e.bbox
        assert 0 <= x0 < x1 <= SMALL.width and 0 <= y0 < y1 <= SMALL.height
        assert e.start in sim.times and e.end in sim.times and e.start < e.end
    assert SceneSimulator(replace(SMALL, events=False)).events == []


def test_events_are_visible_inside_their_box_only(
    with_events: tuple[SceneSimulator, list[Frame]], without_events: list[Frame]
) -> None:
    sim, frames = with_events
    by_time = {f.time: (f, g) for f, g in zip(frames, without_events, strict=True)}
    for e in sim.events:
        x0, y0, x1, y1 = e.bbox
        active = [t for t in sim.times if e.active(t)]
        assert active
        for t in active:
            f, g = by_time[t]
            diff = np.abs(f.data.astype(int) - g.data.astype(int))
            inside = diff[:, y0:y1, x0:x1]
            assert inside.max() >= 5, (e.kind, t)
            outside = diff.copy()
            outside[:, y0:y1, x0:x1] = 0
            if e.kind != "calibration_jump":
                assert outside.max() == 0, (e.kind, t)
        mid = active[len(active) // 2]
        f, g = by_time[mid]
        inside = np.abs(f.data.astype(int) - g.data.astype(int))[:, y0:y1, x0:x1]
        assert inside.max() >= 15 and inside.mean() > 1.0, e.kind
    # Outside every event the two runs are the same.
    quiet = [t for t in sim.times if not sim.labels_at(t)]
    assert quiet
    for t in quiet:
        f, g = by_time[t]
        assert np.array_equal(f.data, g.data)


def test_fault_signatures(with_events: tuple[SceneSimulator, list[Frame]]) -> None:
    sim, frames = with_events
    by_time = {f.time: f for f in frames}
    for e in sim.events:
        if e.kind not in FAULT_KINDS:
            continue
        f = by_time[e.start]
        x0, y0, x1, y1 = e.bbox
        if e.kind == "missing_lines":
            for a, b in e.params["blocks"]:
                assert (f.data[:, a:b, :] == 0).all()
        elif e.kind == "saturated_block":
            for c in e.channels:
                assert (f.data[CHANNELS.index(c), y0:y1, x0:x1] == 255).all()
    # Normal weather never uses the reserved counts.
    normal = [f for f in frames if not sim.labels_at(f.time)]
    assert min(int(f.data.min()) for f in normal) >= 1


def test_labels_round_trip(tmp_path: Path, with_events: tuple[SceneSimulator, list[Frame]]) -> None:
    sim, _ = with_events
    path = tmp_path / "labels.json"
    save_labels(sim.events, path)
    back = load_labels(path)
    assert back == sim.events
    assert [b.params for b in back] == [e.params for e in sim.events]
    raw = json.loads(path.read_text())
    assert raw[0]["start"].endswith("Z") and set(raw[0]) >= {"id", "kind", "start", "end", "bbox", "satellite"}


def test_labels_at_and_active() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    e = SimEvent("x", "striping", t0, t0 + timedelta(hours=1), (0, 0, 10, 10), "d")
    assert e.active(t0) and e.active(t0 + timedelta(hours=1)) and not e.active(t0 + timedelta(hours=2))
    sim = SceneSimulator(replace(SMALL, days=1.0))
    for t in sim.times:
        assert sim.labels_at(t) == [ev for ev in sim.events if ev.start <= t <= ev.end]


def test_archive_is_readable(tmp_path: Path) -> None:
    cfg = replace(SMALL, width=64, height=72, days=0.2, start=datetime(2024, 7, 1, 23, tzinfo=UTC))
    out = write_archive(cfg, tmp_path / "arch", progress=False)
    arch = Archive(out)
    assert len(arch) == cfg.n_frames and not arch.incomplete
    sim_frames = _frames(cfg)
    assert arch.times == [f.time for f in sim_frames]
    for f in sim_frames[:: max(1, len(sim_frames) // 4)]:
        assert np.array_equal(arch.load(f.time).data, f.data)
    assert {p.name for p in out.iterdir() if p.is_dir()} == {"20240701", "20240702"}
    meta = json.loads((out / "simulation.json").read_text())
    assert SimConfig.from_json(meta["config"]) == cfg
    assert meta["n_frames"] == cfg.n_frames
    assert load_labels(out / "labels.json") == SceneSimulator(cfg).events


def test_grey_mapping_inverts_and_orders() -> None:
    kelvin = np.array([190.0, 220.0, 250.0, 280.0, 310.0])
    for ch in CHANNELS:
        counts = kelvin_to_count(kelvin, ch)
        assert np.all(np.diff(counts) < 0)  # colder is brighter
        np.testing.assert_allclose(count_to_kelvin(counts, ch), kelvin, rtol=1e-9)


def test_from_settings_and_validation() -> None:
    from satwatch.services.config import SimulatorSettings

    cfg = SimConfig.from_settings(SimulatorSettings(), seed=3, days=None)
    assert cfg.seed == 3 and cfg.width == 375 and cfg.height == 300 and cfg.days == 2.0
    assert cfg.start == datetime(2024, 7, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        SimConfig(width=8)
    with pytest.raises(ValueError):
        SimConfig(start=datetime(2024, 1, 1))


def test_full_study_size_frame() -> None:
    cfg = SimConfig(seed=5, width=1500, height=1300, days=0.05)
    f = next(iter(SceneSimulator(cfg).frames()))
    assert f.data.shape == (4, 1300, 1500)
    assert 60 < f.data[0].mean() < 200


def test_event_kinds_come_from_one_registry() -> None:
    from satwatch.services.simulator.interface import WEATHER_KINDS, get_event_kind

    assert EVENT_KINDS == ("convection", "vortex", "striping", "missing_lines", "saturated_block", "calibration_jump")
    assert WEATHER_KINDS == ("convection", "vortex") and FAULT_KINDS == EVENT_KINDS[2:]
    assert all(get_event_kind(k).name == k for k in EVENT_KINDS)
    with pytest.raises(ValueError, match="unknown event kind 'hail'"):
        get_event_kind("hail")
