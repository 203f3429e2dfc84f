"""Configuration: one pydantic-settings tree, read from a TOML file and overridden by environment variables.

Precedence (highest first): explicit CLI flags, environment (``SATWATCH_<SECTION>__<FIELD>``), the TOML
file named by ``--config`` or ``SATWATCH_CONFIG``, then the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
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
    port: int = Field(0, description="0 picks a free loopback port")


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
    anomaly_threshold: float | None = Field(None, description="overrides the model card's calibrated threshold")
    model_threads: int = Field(2, description="onnxruntime threads per model (the machine's cores suit most)")
    model_dir: str | None = Field(None, description="directory holding encoder/autoencoder ONNX + cards")
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
    index_ef_construction: int = 200
    index_ef: int = Field(200, description="HNSW search breadth; 200 gives recall@10 >= 0.99 at 1M windows")


class MetricsSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(9108, description="Prometheus /metrics port; 0 picks a free one")


class Settings(BaseSettings):
    """The whole satwatch configuration."""

    model_config = SettingsConfigDict(env_prefix="SATWATCH_", env_nested_delimiter="__", extra="ignore")

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


def load_settings(config_file: str | Path | None = None) -> Settings:
    """Read the TOML file (or ``$SATWATCH_CONFIG``), then apply environment overrides."""
    path = config_file or os.environ.get("SATWATCH_CONFIG")
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {p} does not exist; pass an existing TOML file to --config")
        data = tomllib.loads(p.read_text())
    return Settings(**data)
