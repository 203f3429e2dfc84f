"""Anomaly-detection measures on labelled frames (NumPy only)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from satwatch.services.simulator.interface import EVENT_KINDS
from satwatch.services.training.metrics import average_precision, roc_auc

__all__ = ["EVENT_KINDS", "FRAMES_PER_DAY", "anomaly_metrics", "event_runs", "fmt", "labelled_kinds"]

FRAMES_PER_DAY = 96


def event_runs(labels: Sequence[tuple[str, ...]], kind: str) -> list[tuple[int, int]]:
    """(first, last) frame index of each contiguous run of frames labelled with ``kind``."""
    runs = []
    start = None
    for i, lab in enumerate([*labels, ()]):
        if kind in lab and start is None:
            start = i
        elif kind not in lab and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def labelled_kinds(labels: Sequence[tuple[str, ...]]) -> list[str]:
    """The event kinds the labels hold: the simulator's in their order, then any other (a researcher's own)."""
    held = {k for lab in labels for k in lab}
    return [k for k in EVENT_KINDS if k in held] + sorted(held - set(EVENT_KINDS))


def fmt(v: Any, digits: int = 3) -> str:
    """A figure for the reports' tables: ``n/a`` for NaN."""
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def anomaly_metrics(
    scores: np.ndarray,
    labels: Sequence[tuple[str, ...]],
    normal_scores: np.ndarray | None,
    threshold: float,
    frames_per_day: float = FRAMES_PER_DAY,
) -> dict[str, Any]:
    """ROC AUC / AP overall and per event kind, detection delay, false alerts per normal day.

    Per kind, positives are the frames of that kind and negatives the frames with no event. Delay is the
    number of frames from an event's first frame to its first frame above the threshold. False alerts per
    day count normal frames above the threshold (in ``normal_scores``, a normal-weather twin of the period,
    when given, else the unlabelled frames of the period; ``frames_per_day`` from the archive's cadence).
    Kinds are the simulator's in their order, then any other kind the labels name (a researcher's own).
    """
    s = np.asarray(scores, dtype=np.float64)
    pos = np.array([bool(lab) for lab in labels])
    out: dict[str, Any] = {
        "frames": int(len(s)),
        "event_frames": int(pos.sum()),
        "roc_auc": roc_auc(s, pos),
        "average_precision": average_precision(s, pos),
        "frame_recall": float((s[pos] > threshold).mean()) if pos.any() else float("nan"),
    }
    per: dict[str, Any] = {}
    delays: list[int] = []
    detected = total = 0
    for kind in labelled_kinds(labels):
        mask = np.array([kind in lab for lab in labels])
        sel = mask | ~pos
        runs = event_runs(labels, kind)
        kd = []
        for a, b in runs:
            hits = np.flatnonzero(s[a : b + 1] > threshold)
            if len(hits):
                kd.append(int(hits[0]))
        delays += kd
        detected += len(kd)
        total += len(runs)
        per[kind] = {
            "frames": int(mask.sum()),
            "events": len(runs),
            "detected": len(kd),
            "roc_auc": roc_auc(s[sel], mask[sel]),
            "average_precision": average_precision(s[sel], mask[sel]),
            "mean_delay_frames": float(np.mean(kd)) if kd else float("nan"),
        }
    out["per_kind"] = per
    out["events"] = total
    out["events_detected"] = detected
    out["mean_delay_frames"] = float(np.mean(delays)) if delays else float("nan")
    normal = np.asarray(normal_scores if normal_scores is not None else s[~pos], dtype=np.float64)
    days = len(normal) / frames_per_day
    out["normal_days"] = float(days)
    out["false_alerts_per_day"] = float((normal > threshold).sum() / days) if days else float("nan")
    return out
