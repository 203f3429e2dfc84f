"""Calibration on whole normal streams the network never trained on (``--calibration-archive``).

Held-out days of the training streams share those streams' weather: the per-patch model has in effect seen it,
so their scores sit far below another stream's normal ones and a threshold calibrated on them raises several
false alerts a day on new weather (BENCHMARKS.md, issue 17). Whole streams (or periods) that never trained
give the texture term's centre and spread, the gates and the threshold the spread of weather the model will
meet. Every frame of a calibration archive that its labels leave normal calibrates; each archive is its own
stream (the novelty term compares a frame with its own archive's previous frames only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from satwatch.services.models.anomaly import AnomalyScorer, aggregate_score, typical_error
from satwatch.services.models.modelcard import Scoring
from satwatch.services.training.data import FrameSet, concat, frames_per_day, hours_covered, load_archive


@dataclass
class CalibrationStreams:
    """The calibration archives, each loaded whole (its own labels file marks any event frames)."""

    paths: list[Path]
    streams: list[FrameSet]

    @property
    def normal(self) -> FrameSet:
        """Every normal frame of every calibration archive, archive after archive."""
        parts = []
        for fs in self.streams:
            idx = np.flatnonzero(fs.normal())
            parts.append(FrameSet(fs.satellite, [fs.times[i] for i in idx], fs.data[idx], [fs.labels[i] for i in idx]))
        return concat(parts)

    @property
    def per_day(self) -> float:
        """Frames a day at the calibration streams' cadence (each stream on its own: gaps between them don't count)."""
        return float(np.median([frames_per_day(fs.times) for fs in self.streams]))

    def record(self) -> dict[str, Any]:
        """What the card's ``calibration`` says was used."""
        normal = self.normal
        days = [float(fs.normal().sum() / frames_per_day(fs.times)) for fs in self.streams]
        per_archive = [
            {
                "archive": p.name,
                "frames": int(fs.normal().sum()),
                "first": f"{fs.times[0]:%Y-%m-%d %H:%M}",
                "last": f"{fs.times[-1]:%Y-%m-%d %H:%M}",
                "normal_days": d,
                "hours_covered": hours_covered([t for t, n in zip(fs.times, fs.normal(), strict=True) if n]),
            }
            for p, fs, d in zip(self.paths, self.streams, days, strict=True)
        ]
        return {
            "method": (
                f"whole normal streams the network never trained on (--calibration-archive): every normal frame of "
                f"{len(self.paths)} archive{'s' if len(self.paths) > 1 else ''}, each its own stream"
            ),
            "frames": len(normal),
            "normal_days": float(sum(days)),
            "hours_covered": hours_covered(normal.times),
            "archives": per_archive,
        }


def load_calibration_archives(paths: Sequence[Path], progress: bool = True) -> CalibrationStreams:
    """Load the calibration archives; refuse ones whose normal frames leave an hour of the day uncovered
    (normal scores swing with the hour, so a threshold from part of the day is too tight for the rest)."""
    folders = [Path(p) for p in paths]
    streams = [load_archive(p, progress=progress) for p in folders]
    cal = CalibrationStreams(folders, streams)
    normal = cal.normal
    if not len(normal):
        raise ValueError("the calibration archives hold no normal frame")
    covered = hours_covered(normal.times)
    if covered < 24:
        raise ValueError(
            f"the calibration archives' normal frames cover {covered} of 24 hours of the day; the threshold must "
            "be calibrated on every hour (give more or longer calibration archives)"
        )
    return cal


def refit_scoring(scorer: AnomalyScorer, cal: CalibrationStreams, batch: int = 32) -> Scoring:
    """The scorer's scoring with its centres, spreads and gates refitted on the calibration streams' normal frames
    (the network's raw outputs, standardised as training standardises them); the threshold is the caller's."""
    from satwatch.services.training.autoencoder import normal_standardisation

    sc = scorer.scoring
    if sc.aggregate != "with_consistency" or not sc.consistency_output:
        raise ValueError(f"{scorer.card.name}: only a model set with frame-level checks can be recalibrated")
    names = [sc.error_output, sc.consistency_output, *([sc.texture_output] if sc.texture_output else [])]
    normal = cal.normal
    pix, typical, cons, tex = [], [], [], []
    for s in range(0, len(normal), batch):
        got = scorer.outputs([normal.frame(i) for i in range(s, min(len(normal), s + batch))], names)
        pix.append(aggregate_score(got[0], sc.fraction))
        typical.append(typical_error(got[0]))
        cons.append(got[1].reshape(-1))
        if sc.texture_output:
            tex.append(got[2].reshape(-1))
    fitted = normal_standardisation(
        np.concatenate(pix), np.concatenate(cons), np.concatenate(tex) if tex else None, np.concatenate(typical)
    )
    return sc.model_copy(update=fitted)
