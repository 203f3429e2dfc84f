"""Configuration: one pydantic-settings tree, read from a TOML file and overridden by environment variables.

Precedence (highest first): explicit CLI flags, environment (``SATWATCH_<SECTION>__<FIELD>``), the TOML
file named by ``--config`` or ``SATWATCH_CONFIG``, then the defaults below. Unknown sections and keys, in the
file or in the environment, are refused with the nearest valid name; a TOML syntax error names file and line.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    frames_topic: str = "frames"
    alerts_topic: str = "alerts"
    dead_letter_topic: str = "frames.dlq"
    group_id: str = "satwatch-detector"
    partitions: int = Field(3, description="partitions used when satwatch creates a topic")
    compression_type: str | None = Field(
        None, description="producer batch compression (gzip, lz4, zstd, snappy if installed); none by default"
    )


class BrokerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int | None = Field(
        None,
        description="port `satwatch broker` listens on; unset: the port of kafka.bootstrap_servers (9092), so the "
        "other commands reach it without flags; 0 picks a free loopback port",
    )


class SimulatorSettings(BaseModel):
    seed: int = 7
    satellite: str = "COMS-1"
    area: str = "ea040ps"
    width: int = Field(375, description="frame width in pixels (shrunk COMS size; the native size is 1500)")
    height: int = Field(300, description="frame height in pixels (shrunk COMS size; the native size is 1300)")
    start: str = Field("2024-07-01T00:00:00Z", description="UTC time of the first frame")
    cadence_minutes: int = 15
    days: float = 2.0
    events: bool = Field(True, description="inject labelled events (convection, vortex, sensor faults)")
    geography: int | None = Field(
        None, description="seed of the coastline; runs of one simulated satellite share it (default: seed's own)"
    )
    scene: str = Field(
        "procedural", description="procedural (synthetic fields) or texture (real COMS cloud fields moved and evolved)"
    )
    textures: str = Field(
        "../shared/data/study/raw_images", description="folder of real COMS frames the texture scene is made from"
    )


class DetectorSettings(BaseModel):
    window_size: int | None = Field(
        None, description="frames in a full window; default: the satellite profile's (20 for COMS-1)"
    )
    window_hours: float | None = Field(
        None, description="a window reaches back at most this far; default: the satellite profile's (6 h)"
    )
    profiles_file: str | None = Field(
        None, description="TOML file of extra satellite profiles ([[profile]] tables) to load at start"
    )
    k: int = Field(5, description="similar past events reported per alert")
    distinct_events: bool = Field(True, description="report only similar windows that do not overlap each other")
    rerank: bool = Field(True, description="re-rank search candidates with the exact ground-truth metric")
    rerank_candidates: int = Field(50, description="embedding neighbours re-ranked exactly")
    exclude_recent_hours: float = Field(0.0, description="ignore neighbours ending within this many hours")
    anomaly_threshold: float | None = Field(
        None,
        allow_inf_nan=False,
        description="overrides the model card's calibrated threshold (any finite number: a model whose normal "
        "scores are negative takes a negative one)",
    )
    model_threads: int = Field(2, description="onnxruntime threads per model (the machine's cores suit most)")
    scoring_workers: int = Field(
        2,
        ge=1,
        description="threads scoring a batch's chunks with the autoencoder side by side; the autoencoder's "
        "onnxruntime threads are model_threads shared among them (2 workers of 1 thread: the same scores for "
        "about 2 ms less CPU a frame than 1 worker of 2 threads, BENCHMARKS.md)",
    )
    model_dir: str | None = Field(None, description="directory holding encoder/autoencoder ONNX + cards")
    model_dirs: dict[str, str] = Field(
        default_factory=dict,
        description="one model set per satellite profile (profile name -> model directory): one detector "
        "serves them all, each with its own index under state_dir/<profile>; replaces model_dir when set",
    )
    claim_check_roots: list[str] = Field(
        default_factory=list,
        description="archive directories claim checks may point into (at or below); empty refuses every claim check",
    )
    state_dir: str = Field("var/detector", description="alert store, index and window state live here")
    max_future_minutes: float = Field(60.0, description="frames timed further in the future are refused")
    min_frames_for_search: int = Field(
        4, description="search for similar windows once the window holds this many frames"
    )
    index_save_every: int = Field(200, description="snapshot the index after this many new windows")
    rebuild_messages: int = Field(
        60, description="on (re)start, re-read this many messages per partition to refill windows"
    )
    index_max_elements: int = 100_000
    index_m: int = 16
    index_ef_construction: int = Field(
        400,
        description="HNSW build breadth, fixed when an index is created; 400 (not 200) lifts recall at 1M "
        "time-ordered windows of a 256-number encoder at the same query cost, for 0.2 ms more a new window",
    )
    index_ef: int = Field(
        400, description="HNSW search breadth; 400 keeps recall@10 >= 0.99 for windows inserted in time order"
    )


class MetricsSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(9108, description="Prometheus /metrics port; 0 picks a free one")


class Settings(BaseSettings):
    """The whole satwatch configuration."""

    model_config = SettingsConfigDict(env_prefix="SATWATCH_", env_nested_delimiter="__", extra="forbid")

    kafka: KafkaSettings = KafkaSettings()
    broker: BrokerSettings = BrokerSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    detector: DetectorSettings = DetectorSettings()
    metrics: MetricsSettings = MetricsSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (the TOML file, passed by load_settings) sits below the environment.
        return (env_settings, init_settings)


ENV_PREFIX = "SATWATCH_"
#: Config-file sections that other components read themselves ([feed]: services/feed/config.py).
FOREIGN_SECTIONS = frozenset({"feed"})


class ConfigError(ValueError):
    """A config file or environment variable satwatch cannot use; the message says which and why."""


def _nearest(name: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    return f"did you mean {match[0]!r}?" if match else f"valid: {', '.join(sorted(valid))}"


def _sections() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out[name] = field.annotation
    return out


def check_table(table: Any, model: type[BaseModel], section: str, where: str) -> None:
    """Refuse a ``[section]`` that is not a table, or holds a key ``model`` does not have (naming the nearest)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{section}] must be a table of keys, not {type(table).__name__}")
    fields = list(model.model_fields)
    for key in table:
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r} in [{section}]; {_nearest(key, fields)}")


def check_keys(data: dict[str, Any], where: str) -> None:
    """Refuse unknown sections and keys in a config table, naming the nearest valid one."""
    sections = _sections()
    for section, table in data.items():
        if section in FOREIGN_SECTIONS:
            continue
        if section not in sections:
            raise ConfigError(f"{where}: unknown section [{section}]; {_nearest(section, list(sections))}")
        check_table(table, sections[section], section, where)


def check_single_underscore(section: str, model: type[BaseModel], environ: Mapping[str, str]) -> None:
    """Refuse ``SATWATCH_<SECTION>_<KEY>`` (one underscore) where ``<KEY>`` is a setting: it would be ignored.

    Only exact setting names are refused, so other ``SATWATCH_*`` variables (``SATWATCH_CONFIG``,
    ``SATWATCH_CACHE_DIR``, ...) stay free."""
    head = f"{ENV_PREFIX}{section.upper()}_"
    for name in sorted(environ):
        rest = name[len(head) :]
        if name.upper().startswith(head) and not rest.startswith("_") and rest.lower() in model.model_fields:
            raise ConfigError(
                f"environment variable {name} would be ignored: a setting takes two underscores after its "
                f"section; did you mean {head}_{rest.upper()}?"
            )


def settings_error(where: str, exc: ValidationError) -> ConfigError:
    """A value of the wrong type, as one line naming where it came from and which setting."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return ConfigError(f"{where}: {problems}")


def check_environment(environ: dict[str, str] | None = None) -> None:
    """Refuse ``SATWATCH_<SECTION>__<KEY>`` variables that name no setting (a misspelt one would be ignored)."""
    env = dict(os.environ if environ is None else environ)
    sections = _sections()
    for section, model in sections.items():
        check_single_underscore(section, model, env)
    for name in sorted(env):
        if not name.upper().startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section in FOREIGN_SECTIONS:
            continue
        if section not in sections:
            near = difflib.get_close_matches(section, list(sections), n=1, cutoff=0.5)
            hint = f"did you mean {ENV_PREFIX}{near[0].upper()}__...?" if near else _nearest(section, list(sections))
            raise ConfigError(f"environment variable {name}: unknown section {section!r}; {hint}")
        fields = list(sections[section].model_fields)
        if key not in fields:
            near = difflib.get_close_matches(key, fields, n=1, cutoff=0.5)
            hint = f"did you mean {ENV_PREFIX}{section.upper()}__{near[0].upper()}?" if near else _nearest(key, fields)
            raise ConfigError(f"environment variable {name}: unknown key {key!r} in [{section}]; {hint}")


def read_config_file(config_file: str | Path | None) -> tuple[dict[str, Any], str]:
    """The TOML file (or ``$SATWATCH_CONFIG``) as a table, and how to name it in errors ("the environment" when
    there is none). A missing file or a syntax error is refused, naming the file (and the line)."""
    path = config_file or os.environ.get("SATWATCH_CONFIG")
    if not path:
        return {}, "the environment"
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {p} does not exist; pass an existing TOML file to --config")
    where = f"config file {p}"
    try:
        return tomllib.loads(p.read_text()), where
    except tomllib.TOMLDecodeError as exc:  # its message gives line and column
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None


def values_from(where: str) -> str:
    """Where a setting's value may have come from: the file's name or the environment, or both."""
    return where if where == "the environment" else f"{where} or the environment"


def load_settings(config_file: str | Path | None = None) -> Settings:
    """Read the TOML file (or ``$SATWATCH_CONFIG``), then apply environment overrides.

    Raises ConfigError for a missing or malformed file, an unknown section or key (in the file or in a
    ``SATWATCH_*`` variable) and a value of the wrong type, always naming where it came from. The satellite
    profiles file it names (``detector.profiles_file``) is loaded too, so every command knows the same
    satellites (the producer, the detector, evaluate, index and search alike).
    """
    data, where = read_config_file(config_file)
    check_keys(data, where)
    check_environment()
    data = {k: v for k, v in data.items() if k not in FOREIGN_SECTIONS}
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise settings_error(values_from(where), exc) from None
    if settings.detector.profiles_file:
        from satwatch.services.frames.profiles import load_profiles

        load_profiles(settings.detector.profiles_file)
    return settings
