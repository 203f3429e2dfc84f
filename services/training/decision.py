"""What the detector decides, scored as its forecasters and operators see it (``satwatch evaluate``).

The autoencoder's score alone ranks frames; the detector decides. A frame with a data-quality finding (the
checks against the satellite's previous frames and the pixel checks: the detector's own ``frame_findings``,
run over the frames in stream order) goes to operators as a fault of the
first kind found; any other frame above the threshold goes to forecasters as a weather ``anomaly``. So per
labelled kind:

* weather kinds are ranked by the autoencoder's score (what the forecasters' alerts are cut from);
* fault kinds by the data-quality decision, then the score: a frame a check flags ranks above every frame
  it does not, and frames within each group by their score;

and false alerts per normal day are split by route: ``weather`` (a normal frame above the threshold with no
finding) and ``data_quality`` (a normal frame with a finding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from satwatch.services.detection.alerts import alert_category
from satwatch.services.detection.quality import (
    MODEL_MISMATCH,
    FrameHistory,
    QualityFinding,
    frame_findings,
    model_mismatch,
)
from satwatch.services.models.anomaly import AnomalyResult
from satwatch.services.training.data import FrameSet
from satwatch.services.training.evaluation import FRAMES_PER_DAY, event_runs, fmt, labelled_kinds
from satwatch.services.training.metrics import average_precision, roc_auc


def findings_of(frames: FrameSet, results: Sequence[AnomalyResult] | None = None) -> list[list[QualityFinding]]:
    """Every frame's data-quality findings, as the detector makes them, the frames taken in stream order.

    With the model's ``results``, a frame no check flags but the model does not fit (``out_of_domain``) gets
    the detector's ``model_mismatch`` finding, as it would in the stream.
    """
    history = FrameHistory()
    found = [frame_findings(history, frames.frame(i)) for i in range(len(frames))]
    if results is not None:
        for f, r in zip(found, results, strict=True):
            if not f and r.out_of_domain:
                f.append(model_mismatch(r.domain_ratio))
    return found


def alert_kinds(scores: np.ndarray, findings: Sequence[Sequence[QualityFinding]], threshold: float) -> list[str]:
    """The alert each frame raises: its first finding's kind, else ``anomaly`` above the threshold, else ''."""
    return [f[0].kind if f else ("anomaly" if s > threshold else "") for s, f in zip(scores, findings, strict=True)]


def decision_metrics(
    scores: np.ndarray,
    findings: Sequence[Sequence[QualityFinding]],
    labels: Sequence[tuple[str, ...]],
    threshold: float,
    frames_per_day: float = FRAMES_PER_DAY,
    normal_scores: np.ndarray | None = None,
    normal_findings: Sequence[Sequence[QualityFinding]] | None = None,
) -> dict[str, Any]:
    """ROC AUC / AP per kind of the detector's decision, events caught on their route, false alerts by route.

    Negatives are the frames with no event. ``normal_scores`` / ``normal_findings``: a normal twin of the
    period for the false alerts (else the period's own unlabelled frames).
    """
    s = np.asarray(scores, dtype=np.float64)
    flagged = np.array([bool(f) for f in findings])
    kinds = alert_kinds(s, findings, threshold)
    pos = np.array([bool(lab) for lab in labels])
    spread = [np.abs(s[np.isfinite(s)])]
    if normal_scores is not None:
        spread.append(np.abs(np.asarray(normal_scores, dtype=np.float64)))
    lift = 2.0 * float(max(np.max(a, initial=0.0) for a in spread)) + 1.0
    decided = s + lift * flagged  # flagged frames rank above every frame without a finding
    weather_alert = ~flagged & (s > threshold)
    per: dict[str, Any] = {}
    for kind in labelled_kinds(labels):
        mask = np.array([kind in lab for lab in labels])
        route = alert_category(kind)
        rank = decided if route == "data_quality" else s
        caught = flagged if route == "data_quality" else weather_alert
        sel = mask | ~pos
        runs = event_runs(labels, kind)
        delays = [int(np.flatnonzero(caught[a : b + 1])[0]) for a, b in runs if caught[a : b + 1].any()]
        per[kind] = {
            "route": route,
            "frames": int(mask.sum()),
            "events": len(runs),
            "detected": len(delays),
            "mean_delay_frames": float(np.mean(delays)) if delays else float("nan"),
            "frames_alerted": float(caught[mask].mean()),
            # A weather alert is an ``anomaly`` of no particular kind: only faults are named.
            "frames_named_right": float(np.mean([kinds[i] == kind for i in np.flatnonzero(mask)]))
            if route == "data_quality"
            else float("nan"),
            "roc_auc": roc_auc(rank[sel], mask[sel]),
            "average_precision": average_precision(rank[sel], mask[sel]),
        }
    if normal_scores is not None and normal_findings is not None:
        ns = np.asarray(normal_scores, dtype=np.float64)
        nflag = np.array([bool(f) for f in normal_findings])
    else:
        ns, nflag = s[~pos], flagged[~pos]
    days = len(ns) / frames_per_day
    faults_by_kind: dict[str, int] = {}
    for f in normal_findings if normal_findings is not None else [findings[int(i)] for i in np.flatnonzero(~pos)]:
        if f:
            faults_by_kind[f[0].kind] = faults_by_kind.get(f[0].kind, 0) + 1
    return {
        "frames": int(len(s)),
        "event_frames": int(pos.sum()),
        "roc_auc": roc_auc(decided, pos),
        "average_precision": average_precision(decided, pos),
        "per_kind": per,
        "normal_days": float(days),
        "false_alerts_per_day": {
            "weather": float((~nflag & (ns > threshold)).sum() / days) if days else float("nan"),
            "data_quality": float(nflag.sum() / days) if days else float("nan"),
        },
        "normal_faults_by_kind": faults_by_kind,
    }


def decision_section(
    events: FrameSet,
    results: Sequence[AnomalyResult],
    threshold: float,
    twin: FrameSet | None = None,
    twin_results: Sequence[AnomalyResult] | None = None,
    frames_per_day: float = FRAMES_PER_DAY,
) -> tuple[list[str], dict[str, Any], list[list[QualityFinding]]]:
    """The report's section on the detector's decision: lines, metrics, and each frame's findings."""
    findings = findings_of(events, results)
    normal = findings_of(twin, twin_results) if twin is not None and twin_results is not None else None
    m = decision_metrics(
        np.array([r.score for r in results]),
        findings,
        events.labels,
        threshold,
        frames_per_day,
        np.array([r.score for r in twin_results]) if twin_results is not None else None,
        normal,
    )
    fa = m["false_alerts_per_day"]
    lines = [
        "## What the detector decides",
        "",
        "The same frames as the detector sees them, in stream order: a frame with a data-quality finding (checks "
        "against the satellite's previous frames and pixel checks; `services/detection/quality.py`) goes to "
        "operators as a fault; any other frame above the threshold goes to forecasters as a weather anomaly. "
        "Weather kinds are ranked by the autoencoder's score; fault kinds by the decision: a frame a check flags "
        "ranks above every frame it does not, then by score. "
        + (
            "'Alerted' counts a kind's frames that raised an alert on its route (a fault for a fault kind, a "
            "weather anomaly for a weather kind); 'named right', a fault kind's frames whose alert has that kind."
            if m["event_frames"]
            else "No frame is a labelled event, so only the false alerts on normal frames are measured."
        ),
        "",
    ]
    if m["event_frames"]:
        lines += [
            "| event kind | route | frames | events caught | frames alerted | named right | ROC AUC | AP |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for kind, v in m["per_kind"].items():
            lines.append(
                f"| {kind} | {v['route']} | {v['frames']} | {v['detected']}/{v['events']} | "
                f"{v['frames_alerted']:.2f} | {fmt(v['frames_named_right'], 2).replace('n/a', '-')} | "
                f"{fmt(v['roc_auc'])} | {fmt(v['average_precision'])} |"
            )
        lines += [
            f"| **all** | | {m['event_frames']} | | | | **{fmt(m['roc_auc'])}** | {fmt(m['average_precision'])} |",
            "",
        ]
    faults = ", ".join(f"{k} {n}" for k, n in sorted(m["normal_faults_by_kind"].items())) or "none"
    lines += [
        f"False alerts per normal day ({'same period without events' if twin is not None else 'its unlabelled frames'}"
        f", {m['normal_days']:.1f} days): **{fa['weather']:.2f}** weather (forecasters), "
        f"**{fa['data_quality']:.2f}** data quality (operators; normal frames flagged: {faults}).",
        "",
    ]
    mismatched = sum(1 for f in findings if f and f[0].kind == MODEL_MISMATCH)
    if mismatched:
        lines += [
            f"**{mismatched} of {len(findings)} frames are imagery this model set was not trained for** (typical "
            "reconstruction error over 3 times its calibration frames'): the detector sends them to operators as "
            "`model_mismatch`, and the scores above say nothing about the weather. Evaluate a model set trained "
            "on such frames (docs/models.md, 'Which model set').",
            "",
        ]
    return lines, m, findings
