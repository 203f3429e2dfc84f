"""Anomaly scores at run time: the time-conditioned ONNX autoencoder behind a small API.

The score of a frame is a robust aggregate of its per-pixel reconstruction error (the mean of the worst
fraction of pixels, so a small localised fault still counts), plus, where the model card says so, a
frame-level channel-consistency term that catches whole-channel calibration jumps; the alert threshold
comes from the model card, calibrated on normal weather, and can be overridden by the operator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from satwatch.services.frames.frame import Frame
from satwatch.services.models.modelcard import (
    ModelCard,
    Scoring,
    load_card,
    normalise,
    open_session,
    packaged_model_dir,
    shipped_or_folder,
    verify,
)

AUTOENCODER_FILE = "autoencoder.onnx"
AUTOENCODER_CARD = "autoencoder.card.json"
#: A frame whose typical per-pixel error exceeds this many times the largest one normal calibration frames
#: reached is imagery the model set does not fit: on the study's real frames the procedural simulator's
#: autoencoder reaches 29-32x; frames of the imagery a set was trained on, events and faults included, at most
#: 1.08x (BENCHMARKS.md, "Which model set fits which imagery").
DOMAIN_FACTOR = 3.0
#: Conditioning feature order shared by training and run time.
TIME_FEATURES = ["sin_time_of_day", "cos_time_of_day", "sin_day_of_year", "cos_day_of_year"]


def time_features(times: list[datetime]) -> np.ndarray:
    """(N, 4) float32 sin/cos of UTC time of day and of day of year, in ``TIME_FEATURES`` order."""
    out = np.empty((len(times), 4), dtype=np.float32)
    for i, t in enumerate(times):
        u = t.astimezone(UTC)
        day = (u.hour * 3600 + u.minute * 60 + u.second) / 86400.0
        year = (u.timetuple().tm_yday - 1 + day) / 365.25
        out[i] = (
            math.sin(2 * math.pi * day),
            math.cos(2 * math.pi * day),
            math.sin(2 * math.pi * year),
            math.cos(2 * math.pi * year),
        )
    return out


def aggregate_score(error: np.ndarray, fraction: float) -> np.ndarray:
    """Mean of the largest ``fraction`` of per-pixel errors of each (N,h,w) map -> (N,) float32."""
    flat = error.reshape(error.shape[0], -1)
    k = max(1, int(round(flat.shape[1] * fraction)))
    top = np.partition(flat, flat.shape[1] - k, axis=1)[:, -k:]
    return top.mean(axis=1).astype(np.float32)


def typical_error(error: np.ndarray) -> np.ndarray:
    """Median per-pixel error of each (N,h,w) map over every 2nd row and column -> (N,) float32.

    The median ignores the few pixels weather or a fault touches; the subsample keeps it under 0.1 ms a frame.
    """
    flat = np.ascontiguousarray(error[:, ::2, ::2]).reshape(error.shape[0], -1)
    return np.median(flat, axis=1).astype(np.float32)


def frame_level_excess(
    consistency: np.ndarray | None, scoring: Scoring, lines: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """How far the channel-consistency and scan-line terms rise above their gates (0 below), each (N,)."""
    if consistency is None:
        raise ValueError("with_consistency scoring needs the model's consistency output")
    if scoring.lines_output and lines is None:
        raise ValueError(f"the scoring needs the model's {scoring.lines_output!r} output")
    cons = np.maximum(np.asarray(consistency, dtype=np.float32) - np.float32(scoring.consistency_gate), 0.0)
    if scoring.lines_output and lines is not None:
        line = np.maximum(np.asarray(lines, dtype=np.float32) - np.float32(scoring.lines_gate), 0.0)
    else:
        line = np.zeros_like(cons)
    return cons, line


def texture_term(texture: np.ndarray | None, scoring: Scoring) -> np.ndarray | None:
    """The patch-texture output standardised by the card, (N,); None when the scoring has no texture term."""
    if not scoring.texture_output:
        return None
    if texture is None:
        raise ValueError(f"the scoring needs the model's {scoring.texture_output!r} output")
    t = np.asarray(texture, dtype=np.float32) - np.float32(scoring.texture_center)
    return (t / np.float32(scoring.texture_scale)).astype(np.float32)


def combine_scores(
    pixel: np.ndarray,
    consistency: np.ndarray | None,
    scoring: Scoring,
    lines: np.ndarray | None = None,
    texture: np.ndarray | None = None,
) -> np.ndarray:
    """Frame scores (N,) from pixel scores and, for ``with_consistency`` scoring, the frame-level outputs."""
    pixel = np.asarray(pixel, dtype=np.float32)
    if scoring.aggregate != "with_consistency":
        return pixel
    cons, line = frame_level_excess(consistency, scoring, lines)
    z = pixel_term(pixel, scoring)
    tex = texture_term(texture, scoring)
    if tex is not None:
        # Weather shows as patches unlike normal ones; the reconstruction term counts only beyond its gate (on
        # the texture scene it ranked weather events worse than chance, and its normal swings drowned them).
        z = np.maximum(tex, z)
    return (z + cons + line).astype(np.float32)


def pixel_term(pixel: np.ndarray, scoring: Scoring) -> np.ndarray:
    """The pixel score standardised by the card, less its gate where the card has a texture term (N,)."""
    z = (np.asarray(pixel, dtype=np.float32) - np.float32(scoring.pixel_center)) / np.float32(scoring.pixel_scale)
    return z - np.float32(scoring.pixel_gate) if scoring.texture_output else z


def _texture_heatmap(patches: np.ndarray, shape: tuple[int, ...], scoring: Scoring) -> np.ndarray:
    """The patch-distance map (rows, cols), standardised as the texture term, spread over ``shape`` (h, w)."""
    return _patch_heatmap(patches, shape, scoring.texture_center, scoring.texture_scale)


def _patch_heatmap(patches: np.ndarray, shape: tuple[int, ...], center: float, scale: float) -> np.ndarray:
    """A per-patch map (rows, cols) standardised by ``center`` and ``scale``, spread over ``shape`` (h, w)
    (each patch's value over the model pixels it covers; edge pixels beyond whole patches take the nearest)."""
    z = (np.asarray(patches, dtype=np.float32) - np.float32(center)) / np.float32(scale)
    h, w = shape[-2], shape[-1]
    rows = np.minimum(np.arange(h) * z.shape[0] // max(1, h - h % z.shape[0]), z.shape[0] - 1)
    cols = np.minimum(np.arange(w) * z.shape[1] // max(1, w - w % z.shape[1]), z.shape[1] - 1)
    return z[rows[:, None], cols[None, :]].astype(np.float32)


def novelty_term(patches: np.ndarray, previous: Sequence[np.ndarray], scoring: Scoring) -> float | None:
    """The standardised temporal novelty of a patch-distance map (rows, cols) against the maps of the stream's
    previous frames (see :class:`Scoring`); None when the card has none or no previous map is given."""
    if not scoring.novelty_frames or not previous:
        return None
    return _novelty_of(novelty_excess(patches, previous), scoring)


def _novelty_of(excess: np.ndarray, scoring: Scoring) -> float:
    """The standardised mean of the ``novelty_top`` largest patch excesses."""
    flat = excess.ravel()
    k = min(max(1, scoring.novelty_top), flat.size)
    top = np.partition(flat, flat.size - k)[-k:]
    return float((np.float32(top.mean()) - np.float32(scoring.novelty_center)) / np.float32(scoring.novelty_scale))


def novelty_excess(patches: np.ndarray, previous: Sequence[np.ndarray]) -> np.ndarray:
    """Each patch's distance less the largest the same patch had in ``previous`` (rows, cols): what is new."""
    ref = previous[0] if len(previous) == 1 else np.max(np.stack(previous), axis=0)
    return np.asarray(patches, dtype=np.float32) - np.asarray(ref, dtype=np.float32)


def previous_within(
    scoring: Scoring, time: datetime, earlier: Sequence[tuple[datetime, np.ndarray | None]]
) -> list[np.ndarray]:
    """Of a stream's earlier (time, patch map) pairs (oldest first), the maps novelty compares ``time`` with:
    the latest ``novelty_frames`` strictly before it and at most ``novelty_span_s`` seconds older."""
    out: list[np.ndarray] = []
    for t, m in reversed(earlier):
        if len(out) >= scoring.novelty_frames:
            break
        age = (time - t).total_seconds()
        if age <= 0 or m is None:
            continue
        if age > scoring.novelty_span_s:
            break
        out.append(m)
    return out


def with_novelty(result: AnomalyResult, previous: Sequence[np.ndarray], scoring: Scoring) -> AnomalyResult:
    """The frame's result with its temporal-novelty term: the weather part of the score becomes the larger of
    the frame's own weather term and its novelty (the score is unchanged where novelty is not the larger).

    Where novelty is the larger, the heat map becomes the novelty map (each patch's excess, standardised as the
    term), so the alert points at what is new, not at structure the scene has held for hours.
    """
    if result.patches is None or not scoring.novelty_frames or not previous:
        return result
    excess = novelty_excess(result.patches, previous)  # once: the term and, where it wins, the heat map
    nov = _novelty_of(excess, scoring)
    if nov <= result.weather:
        return replace(result, novelty=nov)
    score = np.float32(nov) + np.float32(result.consistency_excess) + np.float32(result.lines_excess)
    heat = _patch_heatmap(excess, result.heatmap.shape, scoring.novelty_center, scoring.novelty_scale)
    return replace(result, score=float(score), novelty=nov, heatmap=heat)


def stream_with_novelty(
    results: Sequence[AnomalyResult], times: Sequence[datetime], scoring: Scoring
) -> list[AnomalyResult]:
    """Results of one stream's frames (in time order) each with its novelty against the frames before it, as
    the detector applies it frame by frame; unchanged for cards without the novelty term."""
    if not scoring.novelty_frames:
        return list(results)
    out: list[AnomalyResult] = []
    earlier: list[tuple[datetime, np.ndarray | None]] = []
    for r, t in zip(results, times, strict=True):
        out.append(with_novelty(r, previous_within(scoring, t, earlier), scoring))
        earlier.append((t, r.patches))
        if len(earlier) > scoring.novelty_frames:
            earlier.pop(0)
    return out


@dataclass
class AnomalyResult:
    """A frame's anomaly score and its per-pixel error map at model resolution (rows x columns of the card).

    The map is the model's ``error`` output: for the shipped autoencoder the per-pixel negative
    log-likelihood of the frame under the reconstruction, averaged over input planes (higher = stranger).
    For a v2 model whose patch-texture term carries the frame's weather score, it is instead each patch's
    standardised distance from normal weather at its place and hour.
    """

    score: float
    heatmap: np.ndarray
    threshold: float = math.inf
    #: The channel-consistency and scan-line terms' excess over their gates (parts of ``score``): a fault in
    #: the instrument, not the weather, when one alone crosses the threshold.
    consistency_excess: float = 0.0
    lines_excess: float = 0.0
    #: The standardised patch-texture term (v2 models; 0 otherwise); the weather part of ``score`` is the
    #: larger of it and what the standardised pixel term has beyond its gate.
    texture: float = 0.0
    #: The frame's typical per-pixel error over the largest normal calibration frames reached (0 when the card
    #: does not record it); above ``DOMAIN_FACTOR`` the model set does not fit this imagery.
    domain_ratio: float = 0.0
    #: The weather term of the frame alone (v2: the larger of ``texture`` and the pixel term beyond its gate),
    #: and its raw patch-distance map (rows, cols), which the next frames' novelty terms read.
    weather: float = 0.0
    patches: np.ndarray | None = None
    #: The standardised temporal-novelty term (cards with ``novelty_frames``), once :func:`with_novelty` has
    #: compared the frame with its stream's previous frames; None before, or with no previous frame in reach.
    novelty: float | None = None

    @property
    def is_anomaly(self) -> bool:
        return self.score > self.threshold

    @property
    def out_of_domain(self) -> bool:
        """The frame is imagery this model set was not trained for: its score says nothing about weather."""
        return self.domain_ratio > DOMAIN_FACTOR


class AnomalyScorer:
    """Scores frames with the conditioned autoencoder; ``threshold`` defaults to the card's calibration."""

    def __init__(self, card: ModelCard, session: Any, threshold: float | None = None) -> None:
        if card.conditioning is None:
            raise ValueError(f"autoencoder card {card.name!r} lacks its time conditioning input")
        self.card = card
        self._session = session
        self._scoring = card.scoring or Scoring()
        if threshold is None:
            if "anomaly" not in card.thresholds:
                raise ValueError(f"card {card.name!r} has no calibrated 'anomaly' threshold; pass one")
            threshold = card.thresholds["anomaly"]
        self.threshold: float = float(threshold)

    @classmethod
    def load(
        cls, model_dir: str | Path | None = None, threshold: float | None = None, threads: int = 1
    ) -> AnomalyScorer:
        """Load ``autoencoder.onnx`` + card (default: the packaged models), verify them, set the threshold."""
        folder = shipped_or_folder(model_dir) if model_dir is not None else packaged_model_dir()
        card = load_card(folder / AUTOENCODER_CARD)
        if card.kind != "autoencoder":
            raise ValueError(f"{folder / AUTOENCODER_CARD} describes a {card.kind}, not an autoencoder")
        verify(card, folder / card.file)
        return cls(card, open_session(folder / card.file, threads), threshold)

    @property
    def scoring(self) -> Scoring:
        """How the card combines the model's outputs into the score."""
        return self._scoring

    def _run(self, data: np.ndarray, times: list[datetime], outputs: list[str]) -> list[np.ndarray]:
        assert self.card.conditioning is not None
        x = normalise(np.asarray(data), self.card.normalisation)
        if x.shape[0] != len(times):
            raise ValueError(f"{x.shape[0]} frames but {len(times)} times")
        feeds = {self.card.input.name: x, self.card.conditioning.input.name: time_features(times)}
        return [np.asarray(o, dtype=np.float32) for o in self._session.run(outputs, feeds)]

    def with_scoring(self, scoring: Scoring) -> AnomalyScorer:
        """The same network scored another way (a recalibration tries its new centres and gates on it)."""
        return AnomalyScorer(self.card.model_copy(update={"scoring": scoring}), self._session, self.threshold)

    def outputs(self, frames: list[Frame], names: list[str]) -> list[np.ndarray]:
        """The network's raw named outputs for ``frames``, before the card's standardisation: what a
        recalibration fits its centres, spreads and gates on."""
        return self._run(np.stack([f.data for f in frames]), [f.time for f in frames], names)

    def error_maps(self, data: np.ndarray, times: list[datetime]) -> np.ndarray:
        """Per-pixel reconstruction error (N,h,w) float32 of (N,4,H,W) uint8 frames observed at ``times``."""
        return self._run(data, times, [self._scoring.error_output])[0]

    def score_batch(self, frames: list[Frame]) -> list[AnomalyResult]:
        """Score several frames in one model call."""
        if not frames:
            return []
        sc = self._scoring
        frame_level = (
            [sc.consistency_output, sc.lines_output, sc.texture_output, sc.texture_map_output]
            if sc.aggregate == "with_consistency"
            else []
        )
        wanted = [name for name in frame_level if name]
        got = self._run(np.stack([f.data for f in frames]), [f.time for f in frames], [sc.error_output, *wanted])
        maps = got[0]
        named = dict(zip(wanted, got[1:], strict=True))
        consistency, lines = named.get(sc.consistency_output or ""), named.get(sc.lines_output or "")
        texture = named.get(sc.texture_output or "")
        pixel = aggregate_score(maps, sc.fraction)
        scores = combine_scores(pixel, consistency, sc, lines, texture)
        zeros = np.zeros(len(frames), dtype=np.float32)
        if sc.aggregate == "with_consistency":
            cons, line = frame_level_excess(consistency, sc, lines)
            tex = texture_term(texture, sc)
        else:
            cons, line, tex = zeros, zeros, None
        heatmaps: list[np.ndarray] = list(maps)
        tex_maps = named.get(sc.texture_map_output or "")
        if tex is not None and tex_maps is not None:
            pixel_z = pixel_term(pixel, sc)
            heatmaps = [
                _texture_heatmap(tm, m.shape, sc) if t > pz else m
                for m, tm, t, pz in zip(maps, tex_maps, tex, pixel_z, strict=True)
            ]
        domain = typical_error(maps) / np.float32(sc.domain_error_max) if sc.domain_error_max else zeros
        weather = np.maximum(tex, pixel_term(pixel, sc)) if tex is not None else scores - cons - line
        patches: list[np.ndarray | None] = list(tex_maps) if tex_maps is not None else [None] * len(frames)
        return [
            AnomalyResult(float(s), m, self.threshold, float(c), float(li), float(t), float(d), float(w), p)
            for s, m, c, li, t, d, w, p in zip(
                scores, heatmaps, cons, line, tex if tex is not None else zeros, domain, weather, patches, strict=True
            )
        ]

    def score(self, frame: Frame) -> AnomalyResult:
        """Score one frame, conditioning on its observation time."""
        return self.score_batch([frame])[0]
