"""The nowcast an alert carries: a few numbers from what followed its similar past events, cheap enough to
compute on every alert (at most k x 3 frame reads, no motion field, no scoring).

The detector already holds the similar events of an alert (search hits); :func:`alert_summary` turns them,
and the source of their frames, into the predicted cold-cloud cover and mean brightness temperature of the
scored channel at 1, 2 and 3 hours, beside today's, with the spread across analogs. Optional by design: with
no analogs, or none with frames after it, it returns None and the alert goes out as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from satwatch.services.nowcast.analog import frame_at
from satwatch.services.nowcast.blend import BlendWeights
from satwatch.services.nowcast.forecast import Analog, FrameSource, load_shrunk
from satwatch.services.nowcast.verify import COLD_CLOUD_K, SCORED_CHANNEL, cold_cloud_grey
from satwatch.services.simulator.scene import count_to_kelvin

SUMMARY_LEADS = (timedelta(hours=1), timedelta(hours=2), timedelta(hours=3))


@dataclass(frozen=True)
class LeadOutlook:
    """What the analogs say for one lead: similarity-weighted mean and spread (weighted standard deviation)."""

    lead: timedelta
    analogs: int
    cold_fraction: float
    cold_fraction_spread: float
    mean_kelvin: float
    #: The analogs' own cover, before the pull towards today's (``cold_fraction`` is it when no blend is given).
    analog_cold_fraction: float | None = None


@dataclass(frozen=True)
class NowcastSummary:
    """Cold-cloud cover (brightness temperature <= 235 K in ir01) and mean brightness temperature now, and
    as the analogs predict them per lead."""

    issued: datetime
    analogs: int
    best_similarity: float
    cold_fraction_now: float
    mean_kelvin_now: float
    outlook: tuple[LeadOutlook, ...]

    def text(self) -> str:
        """One line for a log or an alert's text."""
        leads = ", ".join(
            f"+{o.lead.total_seconds() / 3600:g}h {100 * o.cold_fraction:.0f}% (±{100 * o.cold_fraction_spread:.0f})"
            for o in self.outlook
        )
        return (
            f"analog nowcast ({self.analogs} analogs, best similarity {self.best_similarity:.2f}): cold cloud "
            f"{100 * self.cold_fraction_now:.0f}% now, {leads}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for an alert's payload."""
        return {
            "text": self.text(),
            "issued": self.issued.isoformat(),
            "analogs": self.analogs,
            "best_similarity": self.best_similarity,
            "cold_cloud_kelvin": COLD_CLOUD_K,
            "cold_fraction_now": self.cold_fraction_now,
            "mean_kelvin_now": self.mean_kelvin_now,
            "outlook": [
                {
                    "lead_minutes": int(o.lead.total_seconds() // 60),
                    "analogs": o.analogs,
                    "cold_fraction": o.cold_fraction,
                    "cold_fraction_spread": o.cold_fraction_spread,
                    "mean_kelvin": o.mean_kelvin,
                    "analog_cold_fraction": o.analog_cold_fraction,
                }
                for o in self.outlook
            ],
        }


def _plane_stats(plane: np.ndarray, threshold: float) -> tuple[float, float]:
    kelvin = count_to_kelvin(plane, SCORED_CHANNEL)
    return float((plane >= threshold).mean()), float(np.nanmean(kelvin))


def alert_summary(
    latest: np.ndarray,
    channels: Sequence[str],
    issued: datetime,
    analogs: Sequence[Analog],
    past: FrameSource,
    cadence: timedelta,
    leads: Sequence[timedelta] = SUMMARY_LEADS,
    blend: BlendWeights | None = None,
) -> NowcastSummary | None:
    """The analog outlook for an alert whose window ends at ``issued`` with frame ``latest`` (C, H, W).

    With ``blend`` the cover at a lead is today's pulled towards the analogs' by the lead's composite weight b
    of ``analog_blend``, ``(1 - b) * now + b * analogs``, and the spread is b times the analogs'; without, it
    is the analogs' cover alone (on held-out texture days the blend erred least at every lead: BENCHMARKS.md).

    ``analogs`` are its similar past events (``analogs.analogs_from_neighbours`` of the search hits, or
    ``analogs.analogs_from_events`` of an alert's ``similar``) and
    ``past`` the source holding what followed them. None when no analog has a frame at any lead.
    """
    if not analogs:
        return None
    ch = list(channels).index(SCORED_CHANNEL) if SCORED_CHANNEL in channels else 0
    threshold = cold_cloud_grey()
    now_cold, now_k = _plane_stats(latest[ch], threshold)
    outlook = []
    for lead in leads:
        stats, weights = [], []
        for a in analogs:
            t = frame_at(past, a.end, lead, cadence / 2)
            if t is None:
                continue
            try:
                plane = load_shrunk(past, t)[ch]
            except (KeyError, OSError, ValueError):
                continue  # a frame the source no longer holds: that analog sits this lead out
            stats.append(_plane_stats(plane, threshold))
            weights.append(max(a.similarity, 1e-6))
        if not stats:
            continue
        w = np.array(weights) / sum(weights)
        cold = np.array([s[0] for s in stats])
        mean = float(w @ cold)
        spread = float(np.sqrt(w @ (cold - mean) ** 2))
        kelvin = float(w @ np.array([s[1] for s in stats]))
        b = 1.0 if blend is None else min(max(blend.at(lead)[1], 0.0), 1.0)
        outlook.append(
            LeadOutlook(
                lead,
                len(stats),
                (1 - b) * now_cold + b * mean,
                b * spread,
                (1 - b) * now_k + b * kelvin,
                mean,
            )
        )
    if not outlook:
        return None
    best = max(a.similarity for a in analogs)
    return NowcastSummary(issued, len(analogs), best, now_cold, now_k, tuple(outlook))
