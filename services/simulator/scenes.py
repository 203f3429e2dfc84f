"""Which scene renders a simulation: ``procedural`` (synthetic fields) or ``texture`` (real cloud fields)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from satwatch.services.frames.frame import Frame
from satwatch.services.frames.profiles import get_profile
from satwatch.services.simulator.event import SimEvent
from satwatch.services.simulator.scene import SceneSimulator, SimConfig


class Scene(Protocol):
    """What every scene offers: its frame times, its labelled events and its frames in time order."""

    times: list[datetime]
    events: list[SimEvent]

    def frames(self) -> Iterator[Frame]: ...

    def labels_at(self, t: datetime) -> list[SimEvent]: ...


def cache_dir() -> Path:
    """Where texture banks are cached: ``$SATWATCH_CACHE_DIR`` or ``~/.cache/satwatch``."""
    return Path(os.environ.get("SATWATCH_CACHE_DIR") or Path.home() / ".cache" / "satwatch")


def open_scene(cfg: SimConfig, cache: str | Path | None = None) -> Scene:
    """The scene ``cfg.scene`` names, ready to render ``cfg``."""
    if cfg.scene == "procedural":
        return SceneSimulator(cfg)
    from satwatch.services.simulator.texture import TextureSimulator
    from satwatch.services.simulator.texturebank import build_bank

    prof = get_profile(cfg.satellite)
    factor = 1 if (cfg.width, cfg.height) == (prof.native_width, prof.native_height) else prof.block
    bank = build_bank(cfg.textures, factor=factor, cache_dir=cache if cache is not None else cache_dir())
    return TextureSimulator(cfg, bank)
