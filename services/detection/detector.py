"""The detector: one frame in, window updated, similar past windows found, anomaly scored, alert decided.

Kafka-free: the consumer hands it decoded frames and publishes what it returns. Per frame the cost is one
frame's embedding and one anomaly score; the window embedding is the running mean of cached frame embeddings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

import numpy as np

from satwatch.services.config import DetectorSettings, Settings
from satwatch.services.detection.alerts import Alert, AlertStore, SimilarEvent, alert_id
from satwatch.services.detection.journal import JOURNAL_FILE, IndexJournal
from satwatch.services.detection.metrics import DetectorMetrics, score_ratio
from satwatch.services.detection.quality import FrameHistory, frame_findings, model_mismatch, pixel_stats
from satwatch.services.detection.scores import FrameScore
from satwatch.services.detection.seams import Encoder, Index, Reranker, Scorer
from satwatch.services.detection.window import Admission, RollingWindow, WindowEntry, WindowView
from satwatch.services.frames.codec import FrameMeta
from satwatch.services.frames.frame import CHANNELS, Frame
from satwatch.services.frames.profiles import (
    ProfileError,
    SatelliteProfile,
    get_profile,
    load_profiles,
    profile_names,
)
from satwatch.services.metric.compare import PairMemo, similarity_one_to_many_memo
from satwatch.services.metric.groundtruth import (
    FrameSignature,
    frame_signature,
    similarity_one_to_many,
    window_signature,
)
from satwatch.services.models.anomaly import AnomalyResult, Scoring, previous_within, with_novelty
from satwatch.services.models.modelcard import ModelCard, packaged_model_dir
from satwatch.services.retrieval.events import distinct_events
from satwatch.services.retrieval.index import Neighbour, WindowRecord
from satwatch.services.retrieval.provenance import IndexProvenance, check_provenance, default_index_dir

log = logging.getLogger(__name__)

EARLIEST_FRAME = datetime(1990, 1, 1, tzinfo=UTC)

#: How far after a similar past event its alert lists the frames that followed it (the forecaster's "what
#: came next"; the same rule as search, ``services.frames.windows.frames_after``).
FOLLOWING = timedelta(hours=6)

#: Frames per anomaly-model call when a batch is scored in the background. Small calls let the first
#: frames' results arrive early, and onnxruntime's cost per frame is lowest at 2-4 frames a call here.
SCORE_CHUNK = 4


class InvalidFrame(ValueError):
    """A frame the detector refuses; ``reason`` is the metric label and dead-letter reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: What scoring one frame gives: its result, or the refusal when the model failed on it.
ScoreOrRefusal: TypeAlias = AnomalyResult | InvalidFrame


@dataclass
class FrameOutcome:
    """What processing one frame produced."""

    satellite: str
    time: datetime
    admission: Admission
    score: float
    threshold: float
    window_frames: int
    neighbours: list[Neighbour] = field(default_factory=list)
    alert: Alert | None = None  # set only when the alert is new to the store
    heatmap: np.ndarray | None = None
    #: The frame's score and its terms, as the store's scores table and ``--scores-out`` record them.
    frame_score: FrameScore | None = None


@dataclass(frozen=True)
class _Admitted:
    """A frame added to its window (the first pass of a batch), as the second pass reads it."""

    frame: Frame
    result: AnomalyResult
    admission: Admission
    window: WindowView  # the window as it stood just after this frame joined it
    means: np.ndarray | None  # the window's input to the encoder's map, when its vector will be wanted


class Detector:
    """Per-satellite rolling windows over one encoder, one anomaly scorer and one similarity index."""

    def __init__(
        self,
        encoder: Encoder,
        scorer: Scorer,
        index: Index,
        store: AlertStore,
        settings: DetectorSettings,
        metrics: DetectorMetrics | None = None,
        *,
        index_dir: str | Path | None = None,
        reranker: Reranker | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        model_channels: tuple[str, ...] = CHANNELS,
        scoring_workers: int = 1,
    ) -> None:
        self.encoder = encoder
        self.scorer = scorer
        self.index = index
        self.store = store
        self.settings = settings
        self.metrics = metrics or DetectorMetrics()
        self.reranker = reranker
        self._now = now
        #: The channels the models were trained on (their cards say); satellites with others are refused.
        self.model_channels = tuple(model_channels)
        self.threshold = settings.anomaly_threshold if settings.anomaly_threshold is not None else scorer.threshold
        #: The card's scoring where it has a temporal-novelty term (frames are compared with their window's last);
        #: None otherwise, so the per-frame path tests one thing.
        scoring: Scoring | None = getattr(getattr(scorer, "card", None), "scoring", None)
        self._novelty = scoring if scoring is not None and scoring.novelty_frames else None
        self.metrics.calibrate(self.threshold)  # the score histogram's buckets span the threshold in force
        self._windows: dict[str, RollingWindow] = {}
        #: Each satellite's last frames as the data-quality checks compare them (rebuilt, like the windows, from
        #: the frames re-read on a start or rebalance).
        self._history = FrameHistory()
        self._index_dir = Path(index_dir) if index_dir else None
        self._journal = IndexJournal(self._index_dir / JOURNAL_FILE) if self._index_dir else None
        self._since_snapshot = 0
        # Workers score frames with the autoencoder while this thread signs, embeds and searches: onnxruntime
        # releases the GIL, so on two cores the two halves of a replay batch overlap. Two workers of one
        # onnxruntime thread each spend less CPU a frame than one worker of two (no threads to wake and join
        # for every operator), and chunks of one batch are scored side by side.
        self._scoring = ThreadPoolExecutor(max_workers=scoring_workers, thread_name_prefix="anomaly")
        #: Frame scores processed since the last flush; written to the store's scores table by ``flush``.
        self._pending_scores: list[FrameScore] = []
        #: Saved state was damaged (an index snapshot or journal records): the consumer rebuilds it by reading
        #: the whole retained stream again instead of only the last few messages.
        self.needs_rebuild = self.index.recovered
        if self._journal is not None:
            self._replay_journal()
        self.metrics.index_size.set(len(self.index))

    def warm_up(self) -> None:
        """Run one blank frame of the configured size through both models, off the record.

        The first call of each model, of the compiled pre-processing and of the exact re-rank loads and
        optimises code (a few hundred ms each); paying that at start-up keeps it out of the first frames.
        """
        served = [p for p in map(get_profile, profile_names()) if p.channels == self.model_channels]
        shape = served[0].shrunk_shape if served else (len(self.model_channels), 300, 375)
        blank = Frame("warm-up", EARLIEST_FRAME, self.model_channels, np.zeros(shape, np.uint8))
        signatures, _ = self._embed([blank])
        self.scorer.score(blank)
        pixel_stats(blank.data)  # the data-quality checks' compiled pass
        if signatures[0] is not None:
            # The exact re-rank's first call builds numba's list type for the frames (about 0.4 s).
            window = window_signature([signatures[0], signatures[0]])
            similarity_one_to_many(window, [window])
            # ... and the re-rank's pair-memo kernel loads its compiled code.
            a, b = (replace(signatures[0], key=k) for k in ("warm-up a", "warm-up b"))
            similarity_one_to_many_memo(window_signature([a, b]), [window_signature([b, a])], PairMemo())

    # -- validation -------------------------------------------------------------------------------------
    def profile(self, satellite: str) -> SatelliteProfile:
        """The satellite's profile; InvalidFrame ``unknown_satellite`` when there is none."""
        try:
            return get_profile(satellite)
        except ProfileError as exc:
            raise InvalidFrame("unknown_satellite", str(exc)) from None

    def validate_meta(self, meta: FrameMeta) -> None:
        """Checks that need only the metadata; raises InvalidFrame."""
        s = self.settings
        profile = self.profile(meta.satellite)
        if tuple(meta.channels) != profile.channels:
            missing = sorted(set(profile.channels) - set(meta.channels))
            extra = sorted(set(meta.channels) - set(profile.channels))
            raise InvalidFrame(
                "wrong_channels",
                f"{meta.satellite} {meta.time:%Y-%m-%d %H:%M}: channels {list(meta.channels)} "
                f"(missing {missing}, unexpected {extra}); the {profile.name} profile has exactly "
                f"{list(profile.channels)}",
            )
        if profile.channels != self.model_channels:
            raise InvalidFrame(
                "no_model",
                f"{meta.satellite}: no model serves its channels {list(profile.channels)}; the loaded models "
                f"were trained on {list(self.model_channels)}. Train models for {profile.name} "
                "(satwatch train ... --satellite) and point detector.model_dir at them",
            )
        expected = profile.shrunk_shape
        shape = tuple(meta.shape)
        # A claim check too describes the shrunk frame: the archive reader applies the profile's preprocessing.
        if shape != expected:
            raise InvalidFrame(
                "wrong_shape",
                f"{meta.satellite} {meta.time:%Y-%m-%d %H:%M}: shape {shape} (channels, height, width), expected "
                f"{expected}: {profile.name} frames are shrunk from {profile.native_width} wide x "
                f"{profile.native_height} high to {expected[2]} x {expected[1]} before publishing",
            )
        latest = self._now() + timedelta(minutes=s.max_future_minutes)
        if not EARLIEST_FRAME <= meta.time <= latest:
            raise InvalidFrame(
                "time_out_of_range",
                f"{meta.satellite}: observation time {meta.time.isoformat()} outside "
                f"{EARLIEST_FRAME:%Y-%m-%d} .. now + {s.max_future_minutes:g} min",
            )
        verdict = self.window(meta.satellite).check(meta.time)
        if verdict in (Admission.DUPLICATE, Admission.OUT_OF_ORDER):
            last = self.window(meta.satellite).end
            raise InvalidFrame(
                verdict.value,
                f"{meta.satellite} {meta.time:%Y-%m-%d %H:%M}: {verdict.value.replace('_', ' ')} frame "
                f"(window already ends at {last:%Y-%m-%d %H:%M})"
                if last
                else f"{verdict.value} frame",
            )

    def window(self, satellite: str) -> RollingWindow:
        w = self._windows.get(satellite)
        if w is None:
            s, p = self.settings, self.profile(satellite)
            span = timedelta(hours=s.window_hours) if s.window_hours else p.window_span
            w = RollingWindow(s.window_size or p.window_frames, span)
            self._windows[satellite] = w
        return w

    # -- processing -------------------------------------------------------------------------------------
    def process(self, frame: Frame, published_at: float | None = None) -> FrameOutcome:
        """Run one validated, decoded frame through the pipeline. Raises InvalidFrame for refused frames."""
        result = self.process_batch([frame], [published_at])[0]
        if isinstance(result, InvalidFrame):
            raise result
        return result

    def process_batch(
        self,
        frames: Sequence[Frame],
        published_at: Sequence[float | None] | None = None,
        scores: Iterator[ScoreOrRefusal] | None = None,
    ) -> list[FrameOutcome | InvalidFrame]:
        """Run frames (in stream order) through the pipeline; the encoder sees the whole batch in one call.

        ``scores``: what :meth:`score_ahead` returned for these very frames, if the caller started their
        anomaly scoring earlier. Returns, per frame, its outcome or the InvalidFrame that refused it (a
        duplicate within the batch, a frame the model failed on).
        """
        if not frames:
            return []
        results = scores if scores is not None else self.score_ahead(frames)
        signatures, embeddings = self._embed(frames)
        stamps = list(published_at) if published_at is not None else [None] * len(frames)
        out: list[FrameOutcome | InvalidFrame | None] = [None] * len(frames)
        # Two passes: every frame into its window first (each window as it then stood kept), then search, alerts
        # and index growth frame by frame, so that the batch's window vectors are mapped in one encoder call
        # (a v2 map reads its 25 MB of weights once per call: about 1.1 ms a window alone, 0.35 ms in a batch).
        admitted: list[tuple[int, _Admitted]] = []
        for i, (frame, emb, res, sig) in enumerate(zip(frames, embeddings, results, signatures, strict=True)):
            if isinstance(res, InvalidFrame):
                out[i] = res
                continue
            try:
                admitted.append((i, self._admit(frame, emb, res, sig)))
            except InvalidFrame as exc:
                out[i] = exc
            except Exception as exc:  # noqa: BLE001 - an unexpected failure costs this frame, not the batch
                # Raising would make the caller retry the whole batch, and the frames already advanced
                # would then look duplicated (and their alerts go unpublished).
                out[i] = self._failed(frame, "process", exc)
        vectors = self._window_vectors([a for _, a in admitted])
        for i, a in admitted:
            try:
                out[i] = self._advance(a, vectors.get((a.frame.satellite, a.window.times)), stamps[i])
            except InvalidFrame as exc:
                out[i] = exc
            except Exception as exc:  # noqa: BLE001 - as above
                out[i] = self._failed(a.frame, "process", exc)
        return [o for o in out if o is not None]

    def _embed(self, frames: Sequence[Frame]) -> tuple[list[FrameSignature | None], np.ndarray]:
        """Frame embeddings, and the frames' ground-truth signatures where the re-ranker keeps them."""
        m = self.metrics
        spec = self.encoder.signature_spec
        if self.reranker is not None and spec is not None and spec == self.reranker.spec:
            # The encoder reads the very grid histograms the re-ranker keeps: sign each frame once for both.
            with m.stage("signature"):
                signed = [frame_signature(f.data, spec) for f in frames]
            with m.stage("embed"):
                signatures: list[FrameSignature | None] = list(signed)
                return signatures, self.encoder.encode_signatures(signed)
        with m.stage("embed"):
            return [None] * len(frames), self.encoder.encode(np.stack([f.data for f in frames]))

    def _score_batch(self, frames: Sequence[Frame]) -> list[AnomalyResult]:
        with self.metrics.stage("anomaly"):
            return self.scorer.score_batch(list(frames))

    def score_ahead(self, frames: Sequence[Frame]) -> Iterator[ScoreOrRefusal]:
        """Queue the frames' anomaly scoring in chunks on the worker; yields the results in frame order.

        The workers take the chunks in order, so frame i's result is ready as soon as its own chunk is,
        while later chunks are still being scored. A frame the model fails on yields an InvalidFrame.
        A caller that knows its next frames early (the consumer, one poll ahead) starts them here and passes
        the iterator to :meth:`process_batch`, so the model works while the caller commits and polls.
        """
        chunks = [
            self._scoring.submit(self._score_isolating_failures, frames[i : i + SCORE_CHUNK])
            for i in range(0, len(frames), SCORE_CHUNK)
        ]
        return (result for chunk in chunks for result in chunk.result())

    def _score_isolating_failures(self, frames: Sequence[Frame]) -> list[ScoreOrRefusal]:
        """Score a chunk; if the model fails, score its frames one by one so only the failing one is lost.

        Earlier frames of the batch may already be in their windows by then, so an exception must not
        escape: the caller would retry the whole batch and find those frames duplicated.
        """
        try:
            return list(self._score_batch(frames))
        except Exception as exc:  # noqa: BLE001 - any model failure becomes that frame's dead letter
            if len(frames) > 1:
                return [r for f in frames for r in self._score_isolating_failures([f])]
            return [self._failed(frames[0], "anomaly", exc)]

    def _failed(self, frame: Frame, stage: str, exc: Exception) -> InvalidFrame:
        """Log and count an unexpected failure at ``stage``; the frame's dead-letter refusal."""
        self.metrics.errors.labels(stage).inc()
        log.exception("%s %s: %s stage failed", frame.satellite, frame.time.isoformat(), stage)
        return InvalidFrame("processing_error", f"{frame.satellite} {frame.time:%Y-%m-%d %H:%M}: {stage} failed: {exc}")

    def _admit(
        self, frame: Frame, embedding: np.ndarray, result: AnomalyResult, signature: FrameSignature | None
    ) -> _Admitted:
        """The first pass: the frame's signature kept and the frame added to its window."""
        m = self.metrics
        sat = frame.satellite
        window = self.window(sat)
        verdict = window.check(frame.time)
        if verdict in (Admission.DUPLICATE, Admission.OUT_OF_ORDER):
            raise InvalidFrame(verdict.value, f"{sat} {frame.time:%Y-%m-%d %H:%M}: {verdict.value} frame in batch")
        if self.reranker is not None:
            with m.stage("signature_store"):
                self.reranker.add(sat, frame.time, frame.data, signature)
        novelty, extras = self._novelty, {}
        if novelty is not None and result.patches is not None:
            # Temporal novelty against the window's previous frames, as satwatch evaluate applies it.
            earlier = [(e.time, e.extras.get("patches")) for e in window.entries[-novelty.novelty_frames :]]
            result = with_novelty(result, previous_within(novelty, frame.time, earlier), novelty)
            extras = {"patches": result.patches}
        admission = window.add(WindowEntry(frame.time, embedding, extras))
        if admission is Admission.RESTARTED:
            m.window_restarts.labels(sat).inc()
            log.warning("%s %s: gap longer than the cadence allows; window restarted", sat, frame.time.isoformat())
        # The window's input, when search or index growth will want its vector (O(parts * dim), not O(window)).
        wanted = len(window) >= self.settings.min_frames_for_search or window.full
        means = window.part_means(self.encoder.parts) if wanted else None
        return _Admitted(frame, result, admission, window.view(), means)

    def _window_vectors(self, admitted: Sequence[_Admitted]) -> dict[tuple[str, tuple[datetime, ...]], np.ndarray]:
        """The index vectors of the admitted frames' windows, mapped in one encoder call, by (satellite, times).

        A failure here is left to the frames: each then maps its own window, and fails alone if that fails.
        """
        wanted = [a for a in admitted if a.means is not None]
        if not wanted:
            return {}
        try:
            vectors = self.encoder.embed_windows(np.stack([a.means for a in wanted if a.means is not None]))
        except Exception:  # noqa: BLE001 - see the docstring
            log.exception("mapping %d windows in one call failed; mapping them one by one", len(wanted))
            return {}
        return {(a.frame.satellite, a.window.times): v for a, v in zip(wanted, vectors, strict=True)}

    def _advance(self, admitted: _Admitted, vector: np.ndarray | None, published_at: float | None) -> FrameOutcome:
        """The second pass, frame by frame in stream order: data-quality checks, search, alert, index growth."""
        m = self.metrics
        frame, result, window = admitted.frame, admitted.result, admitted.window
        sat = frame.satellite

        def window_vector() -> np.ndarray:
            nonlocal vector
            if vector is None:  # mapped alone (the batch's call failed, or was not asked for this window)
                means = admitted.means
                if means is None:
                    raise ValueError(f"{sat} {frame.time:%Y-%m-%d %H:%M}: no window input kept")
                vector = self.encoder.embed_windows(means[None])[0]
            return vector

        score = float(result.score)
        with m.stage("quality"):
            faults = frame_findings(self._history, frame)
        if not faults and result.out_of_domain:
            faults = [model_mismatch(result.domain_ratio)]
        for fault in faults:
            m.quality_faults.labels(fault.kind).inc()
        # A fault is the operators' alert, never a weather anomaly: the frame raises the first fault found.
        kind = faults[0].kind if faults else "anomaly"
        alerting = bool(faults) or score > self.threshold
        neighbours: list[Neighbour] = []
        if len(window) >= self.settings.min_frames_for_search and len(self.index) > 0:
            with m.stage("search"):
                # Exact re-ranking costs ~10 ms, so only alerts, which a forecaster reads, pay for it.
                neighbours = self._search(sat, window, window_vector(), exact=alerting)
        outcome = FrameOutcome(sat, frame.time, admitted.admission, score, self.threshold, len(window), neighbours)
        outcome.heatmap = result.heatmap
        outcome.frame_score = FrameScore.of(sat, frame.time, result, self.threshold, kind if alerting else "")
        self._pending_scores.append(outcome.frame_score)
        if alerting:
            with m.stage("alert_store"):
                alert = self._make_alert(sat, window, score, result.heatmap, neighbours, kind)
                if faults:
                    log.warning("%s %s: data-quality fault %s: %s", sat, frame.time.isoformat(), kind, faults[0].detail)
                # Committed with the batch's scores in flush(), before anything is published or committed.
                if self.store.put(alert, commit=False):
                    outcome.alert = alert
                    m.alerts.labels(sat, alert.kind).inc()
        if window.full:
            with m.stage("index_add"):
                self._grow_index(sat, window, window_vector)
        m.frames_consumed.labels(sat).inc()
        m.anomaly_score.labels(sat).set(score)
        m.anomaly_scores.observe(score)
        m.anomaly_score_ratio.labels(sat).observe(score_ratio(score, self.threshold))
        m.window_fill.labels(sat).set(window.fill)
        m.last_frame_time.labels(sat).set(frame.time.timestamp())
        now = self._now().timestamp()
        m.last_processed.set(now)
        if published_at is not None:
            m.frame_age.labels(sat).observe(max(0.0, now - published_at))
        return outcome

    def _search(self, sat: str, window: WindowView, vector: np.ndarray, exact: bool) -> list[Neighbour]:
        s = self.settings
        start, end = window.start, window.end
        exclude_after = end - timedelta(hours=s.exclude_recent_hours) if s.exclude_recent_hours > 0 else None
        exact = exact and self.reranker is not None
        # Neighbouring windows of one past event overlap and rank together: fetch more than k so that k
        # distinct events remain once overlapping ones are folded into the best of each.
        fetch = max(s.k, s.rerank_candidates) if exact else s.k * (8 if s.distinct_events else 1)
        found = self.index.query(vector, k=fetch, exclude_overlap_with=(start, end), exclude_after=exclude_after)
        if exact and found and self.reranker is not None:
            with self.metrics.stage("rerank"):
                found = self.reranker.rerank(sat, window.times, found)
        return distinct_events(found, s.k) if s.distinct_events else list(found[: s.k])

    def _make_alert(
        self,
        sat: str,
        window: WindowView,
        score: float,
        heatmap: np.ndarray,
        neighbours: Sequence[Neighbour],
        kind: str = "anomaly",
    ) -> Alert:
        start, end = window.start, window.end
        hotspot = None
        if heatmap is not None and heatmap.size:
            y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
            hotspot = (float(x) / heatmap.shape[1], float(y) / heatmap.shape[0])
        similar = [
            SimilarEvent(
                window_id=n.record.window_id,
                satellite=n.record.satellite,
                start=n.record.start,
                end=n.record.end,
                distance=float(n.distance),
                similarity=n.similarity,
                frames_compared=n.frames_compared,
                following=self.index.frames_after(n.record.satellite, n.record.end, FOLLOWING),
            )
            for n in neighbours
        ]
        return Alert(
            id=alert_id(sat, end, kind),
            kind=kind,
            satellite=sat,
            window_start=start,
            window_end=end,
            frames_in_window=len(window),
            score=score,
            threshold=self.threshold,
            hotspot=hotspot,
            similar=similar,
            created=self._now(),
        )

    # -- index growth and durability --------------------------------------------------------------------
    @staticmethod
    def _record(sat: str, times: tuple[datetime, ...]) -> WindowRecord:
        return WindowRecord.from_times(sat, times)

    def _grow_index(self, sat: str, window: WindowView, window_vector: Callable[[], np.ndarray]) -> None:
        times = window.times
        record = self._record(sat, times)
        if self.index.contains(record.window_id):
            return
        vector = window_vector()
        self.index.add(record, vector)
        if self._journal is not None:
            self._journal.append(record.window_id, sat, times, vector)
            self._since_snapshot += 1
            if self._since_snapshot >= self.settings.index_save_every:
                self.snapshot()
        self.metrics.index_size.set(len(self.index))

    def _replay_journal(self) -> None:
        assert self._journal is not None
        n = 0
        for wid, sat, times, vector in self._journal.replay():
            if not self.index.contains(wid):
                self.index.add(self._record(sat, times), vector)
                n += 1
        if n:
            log.info("replayed %d index additions from the journal", n)
        if self._journal.damaged:
            # Counted where operators look; the windows come back as the consumer re-reads the stream.
            self.metrics.errors.labels("journal_damaged").inc(self._journal.damaged)
            self.needs_rebuild = True

    def flush(self) -> None:
        """Make everything processed so far durable; the consumer calls this before committing offsets."""
        if self._pending_scores:
            self.store.put_scores(self._pending_scores)  # commits the batch's alerts too
            self._pending_scores = []
        self.store.commit()
        if self._journal is not None:
            self._journal.sync()
        if self.reranker is not None:
            self.reranker.flush()

    def snapshot(self) -> None:
        """Persist the index and empty the journal (called periodically and on shutdown)."""
        if self._index_dir is None or self._journal is None:
            return
        with self.metrics.stage("index_snapshot"):
            self.index.save(self._index_dir)
            self._journal.truncate()
        self._since_snapshot = 0

    def close(self) -> None:
        self._scoring.shutdown(wait=True)
        self.flush()
        self.snapshot()
        if self._journal is not None:
            self._journal.close()
        if self.reranker is not None:
            self.reranker.close()


def build_detector(
    settings: Settings,
    metrics: DetectorMetrics | None = None,
    *,
    store: AlertStore | None = None,
    profile: SatelliteProfile | None = None,
) -> Detector:
    """Assemble a detector from configuration: shipped (or configured) models, the saved index, the store.

    ``profile``: the satellite profile this model set must serve (the router builds one detector per profile,
    over one shared ``store``); the cards' channels and named profile must match it.
    """
    from satwatch.services.models.anomaly import AnomalyScorer
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.models.locate import resolve_model_dirs, shipped_profile
    from satwatch.services.retrieval.index import SimilarityIndex

    d = settings.detector
    if d.profiles_file:
        load_profiles(d.profiles_file)
    state = Path(d.state_dir)
    # A named folder wins; else the models the profile names (the shipped encoder's profile when none is given).
    # A folder with one model: the other is the shipped one (logged).
    own = profile or (None if d.model_dir else _profile_or_none(shipped_profile()))
    dirs = resolve_model_dirs(d.model_dir, own)
    encoder = FrameEncoder.load(dirs.encoder, threads=d.model_threads)
    # Scoring workers share the autoencoder's threads: each call then runs on its caller's thread alone.
    scorer_threads = max(1, d.model_threads // d.scoring_workers)
    scorer = AnomalyScorer.load(dirs.autoencoder, threshold=d.anomaly_threshold, threads=scorer_threads)
    log.info(
        "model set%s: encoder v%s from %s, autoencoder v%s from %s",
        f" for {own.name}" if own is not None else "",
        encoder.card.version,
        dirs.encoder or packaged_model_dir(),
        scorer.card.version,
        dirs.autoencoder or packaged_model_dir(),
    )
    channels = tuple(encoder.card.normalisation.channels)
    if tuple(scorer.card.normalisation.channels) != channels:
        raise ValueError(
            f"the encoder ({encoder.card.name}) serves channels {list(channels)} but the autoencoder "
            f"({scorer.card.name}) serves {scorer.card.normalisation.channels}; use models trained for one satellite"
        )
    first_index = default_index_dir(state)
    index_dir = default_index_dir(state, (encoder.card.name, encoder.card.sha256))
    if index_dir != first_index:
        log.warning(
            "the index in %s was built by another encoder; encoder %s v%s keeps its own in %s (empty until it "
            "fills; `satwatch index build --archive DIR --out %s` indexes past frames now)",
            first_index,
            encoder.card.name,
            encoder.card.version,
            index_dir,
            index_dir,
        )
    served = [p for p in map(get_profile, profile_names()) if p.channels == channels]
    if profile is not None:
        check_serves(profile, channels, [encoder.card, scorer.card])
        served = [profile]
    window_size = d.window_size or (served[0].window_frames if served else 20)
    check_provenance(index_dir, IndexProvenance(encoder.card.name, encoder.card.sha256, window_size))
    from satwatch.services.retrieval.stream_signatures import StreamSignatures

    index = SimilarityIndex.open_or_create(
        index_dir,
        encoder.dim,
        max_elements=d.index_max_elements,
        m=d.index_m,
        ef_construction=d.index_ef_construction,
        ef=d.index_ef,
    )
    store = store or AlertStore(state / "alerts.sqlite")
    signatures = StreamSignatures(state / "signatures") if d.rerank else None
    detector = Detector(
        encoder,
        scorer,
        index,
        store,
        d,
        metrics,
        index_dir=index_dir,
        reranker=signatures,
        model_channels=channels,
        scoring_workers=d.scoring_workers,
    )
    detector.warm_up()
    return detector


def _profile_or_none(name: str | None) -> SatelliteProfile | None:
    return get_profile(name) if name is not None and name in profile_names() else None


def check_serves(profile: SatelliteProfile, channels: tuple[str, ...], cards: Sequence[ModelCard]) -> None:
    """Refuse a model set for a profile it was not trained for, naming both (channels, or the card's profile)."""
    if channels != profile.channels:
        raise ValueError(
            f"the models {[c.name for c in cards]} serve channels {list(channels)}, but the {profile.name} "
            f"profile has {list(profile.channels)}: use models trained for {profile.name}"
        )
    for card in cards:
        if card.profile is not None and card.profile != profile.name:
            raise ValueError(
                f"model {card.name} was trained for the {card.profile} profile, not {profile.name}: use models "
                f"trained for {profile.name}, or models whose card names it"
            )
