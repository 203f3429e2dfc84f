"""The feed's ``[feed]`` settings are refused as the main settings are: misspelt keys named with the nearest valid
one, in the file or the environment; values of the wrong type naming where they came from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from satwatch.cli import main
from satwatch.services.config import ConfigError
from satwatch.services.feed.config import load_feed_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SATWATCH_"):
            monkeypatch.delenv(name)


def test_misspelt_key_in_the_file_names_the_file_and_the_nearest(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[feed]\ntokn = "abc"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'tokn' in \[feed\]; did you mean 'token'") as err:
        load_feed_settings(cfg)
    assert str(cfg) in str(err.value) and "pydantic" not in str(err.value)


def test_wrong_type_names_where_it_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[feed]\nport = "many"\n')
    with pytest.raises(ConfigError, match=rf"config file {cfg} or the environment: port: "):
        load_feed_settings(cfg)
    monkeypatch.setenv("SATWATCH_FEED__PORT", "many")
    with pytest.raises(ConfigError, match=r"^the environment: port: "):
        load_feed_settings()


def test_one_underscore_after_the_section_is_refused_other_variables_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATWATCH_FEED_SCREENSHOT", "docs/img/feed.png")  # a test's own variable, not a setting
    assert load_feed_settings().port == 8088
    monkeypatch.setenv("SATWATCH_FEED_PORT", "9001")
    with pytest.raises(ConfigError, match="SATWATCH_FEED_PORT would be ignored.*did you mean SATWATCH_FEED__PORT"):
        load_feed_settings()


def test_demo_refuses_a_misspelt_feed_key_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[feed]\ntokn = "abc"\n')
    assert main(["demo", "--config", str(cfg), "--state-dir", str(tmp_path / "state")]) == 2
    err = capsys.readouterr()
    assert "did you mean 'token'" in err.err and "broker" not in err.out
    assert not (tmp_path / "state").exists()
