"""Data-quality checks: instrument and feed faults, kept apart from the weather anomaly model.

Deterministic checks on the shrunk frame, for the faults operational imagers and their ground segments
suffer, plus the autoencoder's frame-level terms where they alone cross the threshold:

* ``missing_lines``: rows that arrived empty. COMS counts reserve 0 for space and missing data, and the
  study's East-Asia sector holds no space, so a row (nearly) all 0 is data lost in transmission or
  processing (the scan-line drop-outs every GEO imager's ground segment reports).
* ``saturated_block``: a block of pixels pinned at the top count (a detector or processing fault; real
  cloud tops never reach 255 on the study's 25 real frames).
* ``calibration_jump``: a channel whose level no longer agrees with the others (the autoencoder's
  channel-consistency term alone is above the threshold).
* ``striping``: periodic line-to-line offsets (the autoencoder's scan-line term alone is above it).

A frame with a finding raises a ``data_quality`` alert of that kind for operators instead of a weather
anomaly alert for forecasters, so a fault never masquerades as weather.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from satwatch.services.models.anomaly import AnomalyResult

#: A row counts as missing when at least this fraction of its pixels is 0 in any channel.
MISSING_ROW_FRACTION = 0.95
#: Side of the square tiles (shrunk-frame pixels) checked for saturation; a whole tile at 255 is a fault.
SATURATED_TILE = 8
#: The kinds these checks raise (the feed routes them to operators).
QUALITY_KINDS = ("missing_lines", "saturated_block", "calibration_jump", "striping")


@dataclass(frozen=True)
class QualityFinding:
    """One fault in one frame: its kind, what was seen, and where (fractions of width and height)."""

    kind: str
    detail: str
    bbox: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1)


def check_pixels(data: np.ndarray) -> list[QualityFinding]:
    """Missing lines and saturated blocks in a (C, H, W) uint8 frame."""
    _, h, w = data.shape
    found: list[QualityFinding] = []
    empty_rows = np.flatnonzero(((data == 0).mean(axis=2) >= MISSING_ROW_FRACTION).any(axis=0))
    if empty_rows.size:
        found.append(
            QualityFinding(
                "missing_lines",
                f"{empty_rows.size} of {h} rows empty (rows {empty_rows[0]}..{empty_rows[-1]})",
                (0.0, float(empty_rows[0]) / h, 1.0, float(empty_rows[-1] + 1) / h),
            )
        )
    t = SATURATED_TILE
    hk, wk = h // t, w // t
    if hk and wk:
        tiles = (data[:, : hk * t, : wk * t] == 255).reshape(len(data), hk, t, wk, t).all(axis=(2, 4)).any(axis=0)
        ys, xs = np.nonzero(tiles)
        if ys.size:
            found.append(
                QualityFinding(
                    "saturated_block",
                    f"{ys.size} blocks of {t} x {t} pixels at the top count",
                    (xs.min() * t / w, ys.min() * t / h, (xs.max() + 1) * t / w, (ys.max() + 1) * t / h),
                )
            )
    return found


def check_model_terms(result: AnomalyResult, threshold: float) -> list[QualityFinding]:
    """Faults the autoencoder's frame-level terms reveal on their own (each term alone above the threshold)."""
    found = []
    if result.consistency_excess > threshold:
        found.append(
            QualityFinding("calibration_jump", f"channel-consistency term {result.consistency_excess:.2f} alone")
        )
    if result.lines_excess > threshold:
        found.append(QualityFinding("striping", f"scan-line term {result.lines_excess:.2f} alone"))
    return found
