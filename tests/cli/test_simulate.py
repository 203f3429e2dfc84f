"""Tests of ``satwatch simulate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from satwatch.cli import main
from satwatch.services.frames.archive import Archive
from satwatch.services.simulator.scene import load_labels


def test_simulate_writes_an_archive(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    args = ["simulate", "--out", str(out), "--days", "0.5", "--width", "64", "--height", "72"]
    rc = main([*args, "--seed", "3", "--start", "2024-01-02T00:00Z", "--cadence-minutes", "30", "--quiet"])
    assert rc == 0
    arch = Archive(out)
    assert len(arch) == 24
    assert arch.times[0].isoformat() == "2024-01-02T00:00:00+00:00"
    assert arch.load(arch.times[0]).data.shape == (4, 72, 64)
    cfg = json.loads((out / "simulation.json").read_text())["config"]
    assert cfg["seed"] == 3 and cfg["cadence_minutes"] == 30 and cfg["events"] is True
    assert load_labels(out / "labels.json")  # half a day holds at least one event


def test_a_satellite_of_the_simulators_channels_gets_its_own_file_names_others_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An archive simulated for a satellite is read back as that satellite (its profile names the files); one
    whose channels the simulator does not render is refused instead of written as COMS-1 files."""
    from satwatch.services.frames import profiles

    coms = profiles.get_profile("COMS-1")
    mine = coms.model_copy(
        update={
            "name": "MY-SAT",
            "filename_patterns": (r"mysat_(?P<channel>[a-z0-9]+)_(?P<area>[a-z0-9]+)_(?P<stamp>\d{12})\.png",),
            "filename_template": "mysat_{channel}_{area}_{stamp}.png",
        }
    )
    monkeypatch.setitem(profiles._REGISTRY, "MY-SAT", mine)
    out = tmp_path / "mine"
    args = ["simulate", "--out", str(out), "--days", "0.25", "--width", "64", "--height", "72", "--quiet"]
    assert main([*args, "--satellite", "MY-SAT"]) == 0
    assert len(Archive(out, "MY-SAT")) == 24 and all(p.name.startswith("mysat_") for p in out.rglob("*.png"))
    capsys.readouterr()
    assert main(["simulate", "--out", str(tmp_path / "gk2a"), "--satellite", "GK-2A", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "simulator renders COMS-1's channels" in err and "GK-2A" in err
    assert not (tmp_path / "gk2a").exists()


def test_no_events_and_settings_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATWATCH_SIMULATOR__WIDTH", "48")
    monkeypatch.setenv("SATWATCH_SIMULATOR__HEIGHT", "50")
    out = tmp_path / "quiet"
    assert main(["simulate", "--out", str(out), "--days", "0.5", "--no-events", "--quiet"]) == 0
    assert load_labels(out / "labels.json") == []
    arch = Archive(out)
    assert arch.load(arch.times[-1]).data.shape == (4, 50, 48)


def test_geography_borrows_another_seeds_coastline(tmp_path: Path) -> None:
    """--geography is recorded and changes only the coastline: seed 9 on seed 4's land is neither stream."""
    common = ["--days", "0.05", "--width", "64", "--height", "72", "--no-events", "--quiet"]
    for seed in ("4", "9"):
        assert main(["simulate", "--out", str(tmp_path / seed), "--seed", seed, "--geography", "4", *common]) == 0
    assert main(["simulate", "--out", str(tmp_path / "own"), "--seed", "9", *common]) == 0
    cfg = json.loads((tmp_path / "9" / "simulation.json").read_text())["config"]
    assert cfg["geography"] == 4 and cfg["seed"] == 9
    first = {name: Archive(tmp_path / name) for name in ("4", "9", "own")}
    frames = {name: a.load(a.times[0]).data for name, a in first.items()}
    assert not np.array_equal(frames["9"], frames["4"])  # other weather
    assert not np.array_equal(frames["9"], frames["own"])  # other coastline under the same weather


def test_bad_arguments_fail_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--out", str(tmp_path / "x"), "--width", "4", "--quiet"]) == 2
    with pytest.raises(SystemExit):
        main(["simulate", "--out", str(tmp_path / "x"), "--start", "yesterday"])


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--out", "--days", "--seed", "--width", "--height", "--start", "--cadence-minutes", "--no-events"):
        assert opt in text
