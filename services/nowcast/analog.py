"""Analog nowcasts: what followed the most similar past windows, as the forecast for what follows now.

``analog`` is the similarity-weighted composite of the analogs' frames at each lead (pixels align: the same
satellite looks at the same area). ``analog_change`` adds the analogs' weighted *change* since their window
ended to the latest frame instead, keeping today's clouds where they are and borrowing only how such weather
evolved. ``analog_cell_histograms`` composites per-cell histograms (the ground-truth metric's grid) for
sources whose pixels do not align, and predicts a distribution per cell rather than a field.

An analog's frame at a lead is the following frame (``services.frames.windows.frames_after``) nearest to
end + lead, within half a cadence; analogs lacking it are left out of that lead's composite.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from satwatch.services.frames.windows import frames_after
from satwatch.services.metric.groundtruth import GridSpec, frame_signature
from satwatch.services.nowcast.forecast import Analog, Forecast, FrameSource, NowcastInput, load_shrunk


def frame_at(source: FrameSource, end: datetime, lead: timedelta, tolerance: timedelta) -> datetime | None:
    """The time of the frame that followed a window ending at ``end`` nearest to ``end + lead``, if any lies
    within ``tolerance`` of it (one rule with search's "what came next": frames_after)."""
    after = frames_after(source.times, end, lead + tolerance)
    best = min(after, key=lambda t: abs(t - (end + lead)), default=None)
    return best if best is not None and abs(best - (end + lead)) <= tolerance else None


def _weights(analogs: tuple[Analog, ...]) -> np.ndarray:
    w = np.array([max(a.similarity, 0.0) for a in analogs], dtype=np.float64)
    return w if w.sum() > 0 else np.ones(len(analogs))


def composite_and_change(data: NowcastInput) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Per lead, the analogs' similarity-weighted frame (``analog``) and the latest frame plus their weighted
    change since their window's end (``analog_change``), both (L, C, H, W) float32 (NaN where no analog
    reaches the lead), read in one pass; and how many analogs reached each lead."""
    if data.past is None or not data.analogs:
        raise ValueError("an analog nowcast needs similar past windows and the source holding what followed them")
    past, tol = data.past, data.cadence / 2
    weights = _weights(data.analogs)
    last = data.frames[-1].astype(np.float64)
    composite = np.full((len(data.leads), *last.shape), np.nan, dtype=np.float32)
    change = np.full_like(composite, np.nan)
    used: list[int] = []
    cache: dict[datetime, np.ndarray] = {}

    def frame(t: datetime) -> np.ndarray:
        if t not in cache:
            cache[t] = load_shrunk(past, t).astype(np.float64)
        return cache[t]

    for i, lead in enumerate(data.leads):
        acc, total = np.zeros_like(last), 0.0
        dacc, dtotal = np.zeros_like(last), 0.0
        n = 0
        for a, w in zip(data.analogs, weights, strict=True):
            t = frame_at(past, a.end, lead, tol)
            if t is None:
                continue
            n += 1
            acc += w * frame(t)
            total += w
            if a.end in past.times:
                dacc += w * (frame(t) - frame(a.end))
                dtotal += w
        used.append(n)
        if total > 0:
            composite[i] = np.clip(acc / total, 0, 255)
        if dtotal > 0:
            change[i] = np.clip(last + dacc / dtotal, 0, 255)
    return composite, change, used


def analog(data: NowcastInput) -> Forecast:
    """Similarity-weighted mean of the analogs' frames at each lead."""
    fields, _, used = composite_and_change(data)
    return Forecast("analog", data.issued, data.leads, fields, {"analogs": len(data.analogs), "used": used})


def analog_change(data: NowcastInput) -> Forecast:
    """The latest frame plus the analogs' similarity-weighted change from their window's end to each lead."""
    _, fields, used = composite_and_change(data)
    return Forecast("analog_change", data.issued, data.leads, fields, {"analogs": len(data.analogs), "used": used})


def analog_cell_histograms(data: NowcastInput, spec: GridSpec | None = None) -> np.ndarray:
    """Per lead, the similarity-weighted mean of the analogs' per-cell histograms, (L, C, N*N, B+1) as
    fractions of each cell (NaN for a lead no analog reaches): a forecast that needs no pixel alignment."""
    if data.past is None or not data.analogs:
        raise ValueError("an analog nowcast needs similar past windows and the source holding what followed them")
    spec = spec or GridSpec(n=24, bins=20, mode="general")
    weights = _weights(data.analogs)
    out: np.ndarray | None = None
    for i, lead in enumerate(data.leads):
        acc, total = None, 0.0
        for a, w in zip(data.analogs, weights, strict=True):
            t = frame_at(data.past, a.end, lead, data.cadence / 2)
            if t is None:
                continue
            h = cell_fractions(load_shrunk(data.past, t), spec)
            acc = w * h if acc is None else acc + w * h
            total += w
        if out is None and acc is not None:
            out = np.full((len(data.leads), *acc.shape), np.nan)
        if out is not None and acc is not None:
            out[i] = acc / total
    if out is None:
        raise ValueError("no analog has a frame at any of the leads asked for")
    return out


def cell_fractions(planes: np.ndarray, spec: GridSpec) -> np.ndarray:
    """Per channel and grid cell, the fraction of pixels in each bin: (C, N*N, B+1), from the metric's own
    frame signature (so cells and bins are exactly the ground-truth metric's)."""
    sig = frame_signature(planes, spec)
    hist = sig.histograms().reshape(sig.channels, spec.cells, spec.bins + 1).astype(np.float64)
    return hist / np.maximum(hist.sum(axis=-1, keepdims=True), 1)
