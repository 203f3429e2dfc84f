"""Frame sources by name, one registry (pysteps' ``interface.get_method`` is the model): ``simulator``,
``archive`` and ``watch``. Each builder turns its options into a :class:`FrameStream` the publisher drains."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from satwatch.producers.publisher import SourceItem
from satwatch.producers.sources import DirectoryWatcher, WatchPosition, archive_source, paced
from satwatch.services.config import Settings
from satwatch.services.detection.metrics import ProducerMetrics
from satwatch.services.frames.archive import Archive, NoFramesError


@dataclass
class FrameStream:
    """Items to publish, how many are expected (None: until stopped), and how the publisher treats them."""

    name: str
    items: Iterator[SourceItem]
    total: int | None
    live: bool = False  # publish and flush each item as it comes (a drop folder), not in batches
    claim_check_root: Path | None = None  # send claim checks to this archive instead of pixels
    banner: str | None = None
    #: Called once an item is flushed to Kafka, with whether it was refused (sent to the dead-letter topic
    #: instead of the frames topic); the watcher records its position.
    on_handled: Callable[[SourceItem, bool], None] | None = None


SourceBuilder = Callable[..., FrameStream]


def simulator_stream(
    settings: Settings, metrics: ProducerMetrics, *, days: float | None = None, seed: int | None = None,
    speed: float = 0.0, **_: Any,
) -> FrameStream:  # fmt: skip
    """The built-in scene simulator (config ``[simulator]``), paced at ``speed`` times real time."""
    from satwatch.services.simulator.scene import SceneSimulator, SimConfig, procedural_hint

    cfg = SimConfig.from_settings(settings.simulator, days=days, seed=seed)
    sim = SceneSimulator(cfg)
    # The detector's default for COMS-1 is the real-imagery set; the procedural scene needs its own.
    banner = procedural_hint(cfg.satellite) if cfg.scene == "procedural" else None
    return FrameStream("simulator", paced(iter(sim.frames()), speed), len(sim.times), banner=banner)


def archive_stream(
    settings: Settings, metrics: ProducerMetrics, *, archive: Path, satellite: str = "COMS-1",
    area: str | None = None, start: datetime | None = None, end: datetime | None = None, speed: float = 0.0,
    claim_check: bool = False, **_: Any,
) -> FrameStream:  # fmt: skip
    """An archive replayed between two times; NoFramesError, saying what was looked for, when it holds none."""
    from satwatch.services.simulator.scene import archive_scene, procedural_hint

    source = Archive(archive, satellite, area)
    metrics.unrecognised_files.labels(source.satellite).inc(len(source.unrecognised))
    source.require_frames()
    times = source.times_between(start, end)
    if not times:
        raise NoFramesError(
            f"{len(source)} {source.satellite} frames under {archive} "
            f"({source.times[0]:%Y-%m-%dT%H:%MZ} .. {source.times[-1]:%Y-%m-%dT%H:%MZ}), none between "
            "--start and --end"
        )
    items = paced(archive_source(source, start, end), speed)
    banner = procedural_hint(source.satellite) if archive_scene(archive) == "procedural" else None
    return FrameStream("archive", items, len(times), claim_check_root=archive if claim_check else None, banner=banner)


def watch_stream(
    settings: Settings, metrics: ProducerMetrics, *, dir: Path, satellite: str = "COMS-1", area: str | None = None,
    settle: float = 0.5, poll: float = 1.0, position: Path | None = None, **_: Any,
) -> FrameStream:  # fmt: skip
    """A directory being filled live; what was published is recorded so a restart re-sends nothing."""
    watcher = DirectoryWatcher(
        dir,
        satellite,
        area,
        settle_seconds=settle,
        on_unrecognised=lambda _: metrics.unrecognised_files.labels(satellite).inc(),
        position=WatchPosition(position or Path(settings.detector.state_dir) / f"watch-{satellite}.json"),
    )

    def handled(item: SourceItem, refused: bool) -> None:
        if item.time is not None:
            watcher.commit([item.time], refused)

    banner = f"watching {dir} for {satellite} images named like {watcher.profile.filename_template} (Ctrl-C stops)"
    return FrameStream("watch", watcher.watch(poll), None, live=True, banner=banner, on_handled=handled)


_SOURCES: dict[str, SourceBuilder] = {"simulator": simulator_stream, "archive": archive_stream, "watch": watch_stream}


def get_source(name: str) -> SourceBuilder:
    """The builder of the frame source called ``name``."""
    try:
        return _SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown frame source {name!r}; known: {', '.join(sorted(_SOURCES))}") from None


def source_names() -> list[str]:
    return sorted(_SOURCES)
