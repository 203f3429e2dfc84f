"""The feed's and the incidents sink's configuration: the ``[feed]`` table of the TOML config file, overridden
by ``SATWATCH_FEED__<KEY>`` environment variables. Misspelt keys are refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from satwatch.services.config import (
    ENV_PREFIX,
    check_single_underscore,
    check_table,
    read_config_file,
    settings_error,
    values_from,
)


class FeedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="the feed binds here; loopback unless configured")
    port: int = Field(8088, description="feed port; 0 picks a free one")
    token: str | None = Field(None, description="writes (acknowledge) need this in the X-Satwatch-Token header")
    reads_need_token: bool = Field(False, description="also require the token to read (untrusted networks)")
    store: str = Field("var/feed/incidents.sqlite", description="the incident store (SQLite)")
    pictures_dir: str | None = Field(
        None, description="per-alert pictures (<alert id>/strip.png, <alert id>/heatmap.png) written by the detector"
    )
    incidents_topic: str = "incidents"
    group_id: str = "satwatch-incidents"
    quiet_minutes: float = Field(120.0, description="stream-time quiet after which an incident resolves")
    overlap_radius: float = Field(
        0.75, description="hotspots further apart than this (image fractions) are separate events"
    )
    alertmanager_url: str | None = Field(None, description="Alertmanager base URL, e.g. http://127.0.0.1:9093")
    alertmanager_resend_seconds: float = Field(60.0, description="re-post open faults this often")
    stream_clock_seconds: float = Field(
        5.0, description="read how far the detector has got this often (0: only alerts move stream time)"
    )
    poll_seconds: float = Field(0.25, description="how often the page's event stream looks for changes")


def load_feed_settings(config_file: str | Path | None = None) -> FeedSettings:
    """The ``[feed]`` table of the config file (or ``$SATWATCH_CONFIG``), then ``SATWATCH_FEED__*`` on top.

    Refused as the main settings are (services/config.py): an unknown key, in the file or in a variable, named
    with the nearest valid one; a value of the wrong type, naming where it came from."""
    file, where = read_config_file(config_file)
    table = file.get("feed", {})
    check_table(table, FeedSettings, "feed", where)
    data: dict[str, Any] = dict(table)
    check_single_underscore("feed", FeedSettings, os.environ)
    prefix = f"{ENV_PREFIX}FEED__"
    for name, value in os.environ.items():
        if name.upper().startswith(prefix):
            key = name[len(prefix) :].lower()
            check_table({key: value}, FeedSettings, "feed", f"environment variable {name}")
            data[key] = value
    try:
        return FeedSettings(**data)
    except ValidationError as exc:
        raise settings_error(values_from(where), exc) from None
