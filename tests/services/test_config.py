"""Configuration: unknown keys are refused with the nearest valid one; precedence flags > env > file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from satwatch.services.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SATWATCH_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "satwatch.toml"
    p.write_text(text)
    return p


def test_misspelt_key_names_the_nearest(tmp_path: Path) -> None:
    p = write(tmp_path, "[detector]\nanomaly_threshhold = 4.0\n")
    with pytest.raises(
        ConfigError,
        match=r"unknown key 'anomaly_threshhold' in \[detector\]; did you mean "
        r"'anomaly_threshold'",
    ) as err:
        load_settings(p)
    assert str(p) in str(err.value)
    with pytest.raises(ConfigError, match="did you mean 'anomaly_threshold'"):
        load_settings(write(tmp_path, "[detector]\nthreshhold = 4.0\n"))


def test_misspelt_section_names_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown section \[detectr\]; did you mean 'detector'"):
        load_settings(write(tmp_path, "[detectr]\nk = 3\n"))
    with pytest.raises(ConfigError, match="must be a table"):
        load_settings(write(tmp_path, "detector = 3\n"))


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, "[detector]\nk = 3\nstate_dir = \n")
    with pytest.raises(ConfigError, match=r"satwatch.toml: invalid TOML: .*line 3"):
        load_settings(p)


def test_wrong_type_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="detector.k"):
        load_settings(write(tmp_path, "[detector]\nk = 'many'\n"))


def test_misspelt_environment_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATWATCH_DETECTOR__THRESHHOLD", "4")
    with pytest.raises(ConfigError, match="SATWATCH_DETECTOR__THRESHHOLD.*did you mean SATWATCH_DETECTOR__"):
        load_settings()
    monkeypatch.delenv("SATWATCH_DETECTOR__THRESHHOLD")
    monkeypatch.setenv("SATWATCH_DETECTR__K", "4")
    with pytest.raises(ConfigError, match="unknown section 'detectr'; did you mean SATWATCH_DETECTOR__"):
        load_settings()


def test_one_underscore_after_the_section_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATWATCH_KAFKA_BOOTSTRAP_SERVERS", "x:1")
    with pytest.raises(ConfigError, match="would be ignored.*did you mean SATWATCH_KAFKA__BOOTSTRAP_SERVERS"):
        load_settings()
    monkeypatch.delenv("SATWATCH_KAFKA_BOOTSTRAP_SERVERS")
    monkeypatch.setenv("SATWATCH_CACHE_DIR", "/tmp/x")  # other satwatch variables name no setting: they pass
    monkeypatch.setenv("SATWATCH_LOG_FORMAT", "json")
    assert load_settings().detector.k == Settings().detector.k


def test_wrong_type_in_the_environment_says_so_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATWATCH_DETECTOR__K", "abc")
    with pytest.raises(ConfigError, match=r"^the environment: detector.k: "):
        load_settings()


def test_other_components_sections_and_variables_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATWATCH_FEED__PORT", "9001")  # the feed reads its own section
    monkeypatch.setenv("SATWATCH_COMS_DATA", "/nowhere")  # not a settings variable
    settings = load_settings(write(tmp_path, "[feed]\nport = 9001\n[detector]\nk = 3\n"))
    assert settings.detector.k == 3


def test_precedence_env_over_file_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "[detector]\nk = 3\nrerank_candidates = 40\n")
    monkeypatch.setenv("SATWATCH_DETECTOR__K", "7")
    settings = load_settings(p)
    assert settings.detector.k == 7 and settings.detector.rerank_candidates == 40
    assert settings.detector.index_m == Settings().detector.index_m
    with pytest.raises(ValueError):
        Settings(detectr={"k": 1})  # type: ignore[call-arg]
