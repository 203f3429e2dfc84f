"""One detector serving several satellites' model sets: a Detector per satellite profile behind a router.

A model set (encoder + autoencoder, whose cards name the profile and channels they were trained for) serves one
profile. Each gets its own Detector, so windows, the similarity index, its journal and the exact re-rank's
signatures are kept per profile (``state_dir/<profile>/``), and one profile's past never answers another's
search. The alert store and the metrics registry are shared: alerts leave by one route, metrics stay labelled
by satellite. A frame of a satellite whose profile has no model set is refused as ``no_model`` (the consumer
counts it and parks it on the dead-letter topic), whatever its channels.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from satwatch.services.config import DetectorSettings, Settings
from satwatch.services.detection.alerts import AlertStore
from satwatch.services.detection.detector import (
    Detector,
    FrameOutcome,
    InvalidFrame,
    ScoreOrRefusal,
    build_detector,
)
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.services.frames.codec import FrameMeta
from satwatch.services.frames.frame import Frame
from satwatch.services.frames.profiles import (
    ProfileError,
    SatelliteProfile,
    get_profile,
    load_profiles,
    profile_names,
)
from satwatch.services.models.locate import ModelChoice


class DetectorRouter:
    """Routes each frame to the detector of its satellite's profile; the consumer drives it as one detector."""

    def __init__(self, routes: Mapping[str, Detector], store: AlertStore, metrics: DetectorMetrics) -> None:
        if not routes:
            raise ValueError("a router needs at least one model set")
        self.routes = dict(routes)
        self.store = store
        self.metrics = metrics
        for name, detector in self.routes.items():
            metrics.model_set_threshold.labels(name).set(detector.threshold)
        self._count_index()

    @property
    def thresholds(self) -> dict[str, float]:
        """Profile -> the alert threshold in force for its model set."""
        return {name: d.threshold for name, d in self.routes.items()}

    @property
    def needs_rebuild(self) -> bool:
        """Any model set's saved state was damaged: the consumer re-reads the whole stream (all are rebuilt)."""
        return any(d.needs_rebuild for d in self.routes.values())

    @needs_rebuild.setter
    def needs_rebuild(self, value: bool) -> None:
        for d in self.routes.values():
            d.needs_rebuild = value

    # -- routing ----------------------------------------------------------------------------------------
    def profile(self, satellite: str) -> SatelliteProfile:
        """The satellite's profile, by the detectors' own lookup (InvalidFrame ``unknown_satellite`` if none)."""
        return next(iter(self.routes.values())).profile(satellite)

    def detector_for(self, satellite: str) -> Detector:
        """The detector serving the satellite's profile; InvalidFrame ``no_model`` when no model set does."""
        return self.routes[self._route(satellite)]

    def _route(self, satellite: str) -> str:
        profile = self.profile(satellite)
        if profile.name not in self.routes:
            raise InvalidFrame(
                "no_model",
                f"{satellite}: no model set serves the {profile.name} profile; this detector serves "
                f"{sorted(self.routes)}. Add one (detector.model_dirs, satwatch detect --model-dir "
                f"{profile.name}=DIR)",
            )
        return profile.name

    def validate_meta(self, meta: FrameMeta) -> None:
        """The serving detector's checks; raises InvalidFrame (``no_model`` first)."""
        self.detector_for(meta.satellite).validate_meta(meta)

    def _route_names(self, frames: Sequence[Frame]) -> list[str | InvalidFrame]:
        out: list[str | InvalidFrame] = []
        for f in frames:
            try:
                out.append(self._route(f.satellite))
            except InvalidFrame as exc:
                out.append(exc)
        return out

    # -- processing -------------------------------------------------------------------------------------
    def score_ahead(self, frames: Sequence[Frame]) -> Iterator[ScoreOrRefusal]:
        """Start each model set's anomaly scoring of its frames now; yields the results in frame order."""
        names = self._route_names(frames)
        streams = {
            name: self.routes[name].score_ahead([f for f, n in zip(frames, names, strict=True) if n == name])
            for name in dict.fromkeys(n for n in names if isinstance(n, str))
        }
        return (next(streams[n]) if isinstance(n, str) else n for n in names)

    def process_batch(
        self,
        frames: Sequence[Frame],
        published_at: Sequence[float | None] | None = None,
        scores: Iterator[ScoreOrRefusal] | None = None,
    ) -> list[FrameOutcome | InvalidFrame]:
        """Each model set processes its frames (in stream order); results come back in frame order."""
        if not frames:
            return []
        names = self._route_names(frames)
        stamps = list(published_at) if published_at is not None else [None] * len(frames)
        split = _Split(scores, names) if scores is not None else None
        out: list[FrameOutcome | InvalidFrame | None] = [n if isinstance(n, InvalidFrame) else None for n in names]
        for name in dict.fromkeys(n for n in names if isinstance(n, str)):
            mine = [i for i, n in enumerate(names) if n == name]
            results = self.routes[name].process_batch(
                [frames[i] for i in mine],
                [stamps[i] for i in mine],
                split.stream(name, len(mine)) if split is not None else None,
            )
            for i, result in zip(mine, results, strict=True):
                out[i] = result
        self._count_index()
        return [r for r in out if r is not None]

    def _count_index(self) -> None:
        sizes = {name: len(d.index) for name, d in self.routes.items()}
        for name, n in sizes.items():
            self.metrics.model_sets.labels(name).set(n)
        self.metrics.index_size.set(sum(sizes.values()))

    # -- durability -------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Make every model set's state durable; the consumer calls this before committing offsets."""
        for d in self.routes.values():
            d.flush()

    def snapshot(self) -> None:
        for d in self.routes.values():
            d.snapshot()

    def close(self) -> None:
        for d in self.routes.values():
            d.close()


#: What the detector consumer drives: one model set, or several behind a router.
FrameDetector: TypeAlias = Detector | DetectorRouter


class _Split:
    """One iterator of per-frame results, in frame order, handed out lazily as one iterator per route."""

    def __init__(self, results: Iterator[ScoreOrRefusal], names: Sequence[str | InvalidFrame]) -> None:
        self._results = results
        self._names = iter(names)
        self._buffered: dict[str, deque[ScoreOrRefusal]] = defaultdict(deque)

    def _take(self, name: str) -> ScoreOrRefusal:
        while not self._buffered[name]:
            owner, result = next(self._names), next(self._results)
            if isinstance(owner, str):  # an unrouted frame's own refusal is not any route's
                self._buffered[owner].append(result)
        return self._buffered[name].popleft()

    def stream(self, name: str, n: int) -> Iterator[ScoreOrRefusal]:
        return (self._take(name) for _ in range(n))


def detector_routes(d: DetectorSettings) -> dict[str, str | None]:
    """Profile name -> model folder (None: the profile's own set) when the detector routes per profile; empty
    when it serves one set from ``state_dir`` itself.

    ``model_dirs`` when set; else, with no ``model_dir`` either, the shipped encoder's profile (COMS-1) and every
    loaded profile naming models of its own (a user's TOML ``encoder``/``autoencoder``), as if ``model_dirs``
    had named them.
    """
    from satwatch.services.models.locate import shipped_profile

    routes_of: dict[str, str | None] = dict(d.model_dirs)
    if not routes_of and not d.model_dir:
        shipped = shipped_profile()
        own = [p.name for p in map(get_profile, profile_names()) if (p.encoder or p.autoencoder) and p.name != shipped]
        if own and shipped is not None:
            routes_of = {shipped: None, **dict.fromkeys(own)}
    return routes_of


@dataclass(frozen=True)
class ArchiveRoute:
    """The models that serve an archive's frames, and the state folder of the detector that serves them."""

    choice: ModelChoice
    #: Where that detector keeps the profile's index (``state_dir/<profile>`` when it routes per profile).
    state_dir: Path


def archive_route(
    d: DetectorSettings, archive_root: Path, profile: SatelliteProfile, model_dir: str | Path | None,
    index_named: bool = False,
) -> ArchiveRoute:  # fmt: skip
    """:func:`~satwatch.services.models.locate.archive_models` with the folder the detector is configured to serve
    ``profile`` with (``detector.model_dirs`` or ``model_dir``, as :func:`build_frame_detector` routes).

    ``index build``, ``search`` and ``nowcast --index`` use it, so an index built for a profile is the one the
    detector serving that profile keeps, built with the encoder it loads. ValueError when the detector routes
    per profile, serves none of ``profile``'s frames, and the command names no model folder and no index.
    """
    from satwatch.services.models.locate import archive_models

    routes = detector_routes(d)
    if not routes:
        choice = archive_models(archive_root, profile, model_dir, d.model_dir)
        return ArchiveRoute(choice, Path(d.state_dir))
    name = profile.name
    if name not in routes and not (model_dir and index_named):
        raise ValueError(
            f"the detector serves no {name} frames: detector.model_dirs names {', '.join(sorted(routes))}; add "
            f'"{name}" there, or give both --model-dir and the index folder'
        )
    why = f'detector.model_dirs["{name}"] of the config'
    choice = archive_models(archive_root, profile, model_dir, routes.get(name), why)
    return ArchiveRoute(choice, Path(d.state_dir) / name)


def build_frame_detector(settings: Settings, metrics: DetectorMetrics | None = None) -> FrameDetector:
    """The configured detector: one model set (``detector.model_dir``) or one per profile (``model_dirs``,
    :func:`detector_routes`)."""
    d = settings.detector
    if d.profiles_file:
        load_profiles(d.profiles_file)
    routes_of = detector_routes(d)
    if not routes_of:
        return build_detector(settings, metrics)
    metrics = metrics or DetectorMetrics()
    state = Path(d.state_dir)
    store = AlertStore(state / "alerts.sqlite")
    routes: dict[str, Detector] = {}
    try:
        for name, model_dir in routes_of.items():
            try:
                profile = get_profile(name)
            except ProfileError as exc:
                raise ValueError(f"detector.model_dirs names {name!r}: {exc}") from None
            route = d.model_copy(update={"model_dir": model_dir, "state_dir": str(state / profile.name)})
            routes[profile.name] = build_detector(
                settings.model_copy(update={"detector": route}), metrics, store=store, profile=profile
            )
    except BaseException:
        for built in routes.values():
            built.close()
        store.close()
        raise
    return DetectorRouter(routes, store, metrics)
