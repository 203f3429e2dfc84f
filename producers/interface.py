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
from satwatch.services.frames.codec import INLINE_LIMIT
from satwatch.services.frames.profiles import get_profile


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


class ClaimCheckNeededError(ValueError):
    """A source started without --claim-check for a satellite whose frames cannot travel inline."""


#: zlib (level 1, as encode_inline compresses) on real imagery: the 25 real COMS frames, shrunk, compress to
#: 0.847-0.862 of their size; a GK-2A or Himawari user reports about 86% on theirs.
REAL_IMAGERY_ZLIB_RATIO = 0.86


def require_inline_fit(satellite: str, folder: Path, source: str) -> None:
    """Refuse to start (ClaimCheckNeededError) when the satellite's shrunk frame does not fit inline raw.

    Such a frame travels only if zlib brings it under INLINE_LIMIT, and real imagery compresses to only about
    86%: a GK-2A frame (1.85 MB raw) or a Himawari one (1.58 MB) would need 49% or 57%. Only a frame of unusually
    little content (a visible band blank at night, a failed channel) could fit, so which frames got through
    would depend on the hour and the weather, leaving windows full of gaps, and every other frame would be
    dead-lettered; the watcher records refused times as handled, so not even a restart with --claim-check
    would send them again. Refusing at the start loses nothing, and --claim-check sends every frame, so the
    line is drawn where zlib becomes necessary at all: raw planes over the limit.
    """
    profile = get_profile(satellite)
    c, h, w = profile.shrunk_shape
    raw = c * h * w
    if raw <= INLINE_LIMIT:
        return
    how = "start the watcher" if source == "watch" else "replay the archive"
    where = "image files in" if source == "watch" else "archive's files in"
    root = folder.resolve()
    raise ClaimCheckNeededError(
        f"{profile.name} frames shrunk to the study size ({c} channels x {h} x {w}) are {raw:,} bytes, over the "
        f"{INLINE_LIMIT:,}-byte limit of a frame sent inline, and zlib brings real imagery only to about "
        f"{REAL_IMAGERY_ZLIB_RATIO:.0%}, so nearly every frame would be refused to the dead-letter topic. "
        f"{how.capitalize()} with --claim-check: each message then carries a reference to the {where} {root}, "
        f"and the detector reads the frame there: it must be able to read {root}, and its "
        "detector.claim_check_roots must list it"
    )


class SimulatorUnsendableError(ValueError):
    """A simulator configured for a satellite whose frames it cannot render in a form the detector accepts."""


def require_simulator_sendable(satellite: str, width: int, height: int) -> None:
    """Refuse to start (SimulatorUnsendableError) a simulator whose every frame would be refused.

    The simulator renders COMS-1's four channels (ir01, ir02, swir, wv) whatever ``[simulator] satellite``
    says, and has no folder a claim check could name, so its frames travel inline. A satellite of another
    channel set (GK-2A's 16, Himawari-8/9's 14, MTSAT's and GMS-5's own names) would have every frame
    dead-lettered by the detector as wrong_channels. Inline size then follows: four planes at the profile's
    shrunk size (the simulator's frames at the native size are shrunk on the way) fit easily, 4 x 300 x 375 =
    450,000 bytes for COMS-1; only a frame size configured neither native nor shrunk can run over
    INLINE_LIMIT, and that is refused too.
    """
    from satwatch.services.frames.frame import CHANNELS
    from satwatch.services.simulator.scene import UnsimulatedSatelliteError, require_simulated_channels

    try:
        profile = require_simulated_channels(satellite)
    except UnsimulatedSatelliteError as exc:
        raise SimulatorUnsendableError(str(exc)) from None
    native = (width, height) == (profile.native_width, profile.native_height)
    c, h, w = profile.shrunk_shape if native else (len(CHANNELS), height, width)
    if c * h * w > INLINE_LIMIT:
        raise SimulatorUnsendableError(
            f"simulated {profile.name} frames of {width} x {height} are {c * h * w:,} bytes ({c} channels), over "
            f"the {INLINE_LIMIT:,}-byte limit of a frame sent inline, and the simulator cannot send claim checks: "
            f"set [simulator] width and height to the profile's shrunk size {profile.shrunk_width} x "
            f"{profile.shrunk_height} or its native size {profile.native_width} x {profile.native_height}"
        )


def simulator_stream(
    settings: Settings, metrics: ProducerMetrics, *, days: float | None = None, seed: int | None = None,
    speed: float = 0.0, **_: Any,
) -> FrameStream:  # fmt: skip
    """The built-in scene simulator (config ``[simulator]``), paced at ``speed`` times real time."""
    from satwatch.services.simulator.scene import SimConfig, procedural_hint
    from satwatch.services.simulator.scenes import open_scene

    cfg = SimConfig.from_settings(settings.simulator, days=days, seed=seed)
    require_simulator_sendable(cfg.satellite, cfg.width, cfg.height)
    sim = open_scene(cfg)  # [simulator] scene: procedural, or texture (real cloud fields)
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

    if not claim_check:
        require_inline_fit(satellite, archive, "archive")
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
    settle: float = 0.5, poll: float = 1.0, position: Path | None = None, claim_check: bool = False, **_: Any,
) -> FrameStream:  # fmt: skip
    """A directory being filled live; what was published is recorded so a restart re-sends nothing.

    With ``claim_check`` the watched directory is the claim checks' archive root: messages carry a reference to
    the files that landed there, and the detector (``detector.claim_check_roots``) reads them in place.
    """
    if not claim_check:
        require_inline_fit(satellite, dir, "watch")
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
    if claim_check:
        banner += f"; sending claim checks into {dir.resolve()} (list it in detector.claim_check_roots)"
    return FrameStream(
        "watch",
        watcher.watch(poll),
        None,
        live=True,
        claim_check_root=dir if claim_check else None,
        banner=banner,
        on_handled=handled,
    )


_SOURCES: dict[str, SourceBuilder] = {"simulator": simulator_stream, "archive": archive_stream, "watch": watch_stream}


def get_source(name: str) -> SourceBuilder:
    """The builder of the frame source called ``name``."""
    try:
        return _SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown frame source {name!r}; known: {', '.join(sorted(_SOURCES))}") from None


def source_names() -> list[str]:
    return sorted(_SOURCES)
