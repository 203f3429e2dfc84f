"""Verification of nowcasts against what happened, with pysteps' scores (the ``[nowcast]`` extra).

Scores are computed on the infrared window channel (``ir01``, 10.8 um), where grey level is a brightness
temperature (colder is brighter):

- **CSI** and **FSS** on the *cold-cloud* mask, brightness temperature at or below :data:`COLD_CLOUD_K`
  (235 K). 235 K is the classic deep-convection threshold (Arkin's GOES precipitation index): colder tops are
  high, thick cloud that rains, warmer ones are low or mid cloud, land or sea. A forecaster's question "where
  will the storms be in an hour" is a question about this mask. The grey level it maps to comes from the
  stated COMS-like grey mapping (``services.simulator.scene.kelvin_to_count``, fitted to the COMS-1 IR1
  calibration table): grey 200.5. FSS is taken over square neighbourhoods of :data:`FSS_SCALE` pixels.
- **MAE** of brightness temperature in kelvin (grey levels turned to kelvin by the same mapping; pixels at
  full scale, which have no temperature, are left out).
- **cell similarity**: the study's ground-truth metric between forecast and observed frame (1 - KS per grid
  cell, averaged), which also scores forecasts that are per-cell histograms rather than fields.

Scores are accumulated over cases the pysteps way (contingency tables and FSS sums added up, then
computed), so a table over many issue times is not a mean of per-case ratios.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from satwatch.services.metric.groundtruth import GridSpec
from satwatch.services.nowcast.analog import cell_fractions
from satwatch.services.simulator.scene import count_to_kelvin, kelvin_to_count

#: Cold-cloud threshold (brightness temperature, K) of CSI and FSS.
COLD_CLOUD_K = 235.0
#: FSS neighbourhood, in shrunk pixels (each 4 x 4 native pixels at the study size): 36 native pixels across.
FSS_SCALE = 9
SCORED_CHANNEL = "ir01"


def cold_cloud_grey(kelvin: float = COLD_CLOUD_K, channel: str = SCORED_CHANNEL) -> float:
    """The grey level of a brightness temperature: pixels at or above it are cold cloud."""
    return float(kelvin_to_count(kelvin, channel))


def _scores() -> tuple[Any, Any, Any]:
    with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints where it found its config on import
        from pysteps.verification import detcatscores, detcontscores, spatialscores
    return detcatscores, detcontscores, spatialscores


def cell_similarity(forecast: np.ndarray, observed: np.ndarray) -> float:
    """Mean of 1 - KS over cells between two per-cell bin fractions (..., cells, bins)."""
    d = np.abs(np.cumsum(forecast, axis=-1) - np.cumsum(observed, axis=-1)).max(axis=-1)
    return float(1.0 - d.mean())


@dataclass
class LeadScores:
    """Scores of one method at one lead, over every case it was verified on."""

    method: str
    lead: timedelta
    cases: int
    csi: float
    fss: float
    mae_k: float
    cell_similarity: float


@dataclass
class _Accumulator:
    cat: Any
    cont: Any
    fss: Any
    cell: list[float] = field(default_factory=list)
    cases: int = 0
    fields: int = 0


class Scoreboard:
    """Accumulates forecast/observation pairs per (method, lead) and reports scores by lead time."""

    def __init__(self, threshold_k: float = COLD_CLOUD_K, scale: int = FSS_SCALE, spec: GridSpec | None = None) -> None:
        self.cat_mod, self.cont_mod, self.fss_mod = _scores()
        self.threshold_k = threshold_k
        self.threshold_grey = cold_cloud_grey(threshold_k)
        self.scale = scale
        self.spec = spec or GridSpec(n=24, bins=20, mode="general")
        self._acc: dict[tuple[str, timedelta], _Accumulator] = {}

    def _get(self, method: str, lead: timedelta) -> _Accumulator:
        key = (method, lead)
        if key not in self._acc:
            self._acc[key] = _Accumulator(
                self.cat_mod.det_cat_fct_init(self.threshold_grey),
                self.cont_mod.det_cont_fct_init(),
                self.fss_mod.fss_init(self.threshold_grey, self.scale),
            )
        return self._acc[key]

    def add(self, method: str, lead: timedelta, forecast: np.ndarray, observed: np.ndarray) -> None:
        """One case: forecast and observed grey planes (H, W) of the scored channel (NaN = no forecast)."""
        if not np.isfinite(forecast).any():
            return
        acc = self._get(method, lead)
        f = forecast.astype(np.float64)
        o = observed.astype(np.float64)
        self.cat_mod.det_cat_fct_accum(acc.cat, f, o)
        self.fss_mod.fss_accum(acc.fss, f, o)
        fk, ok = count_to_kelvin(f, SCORED_CHANNEL), count_to_kelvin(o, SCORED_CHANNEL)
        self.cont_mod.det_cont_fct_accum(acc.cont, fk, ok)
        grey = np.clip(np.rint(np.nan_to_num(f, nan=0.0)), 0, 255).astype(np.uint8)
        acc.cell.append(
            cell_similarity(cell_fractions(grey, self.spec), cell_fractions(observed.astype(np.uint8), self.spec))
        )
        acc.cases += 1
        acc.fields += 1

    def add_cells(self, method: str, lead: timedelta, fractions: np.ndarray, observed: np.ndarray) -> None:
        """One case of a per-cell histogram forecast (cells, bins) against the observed grey plane (H, W)."""
        if not np.isfinite(fractions).all():
            return
        acc = self._get(method, lead)
        acc.cell.append(cell_similarity(fractions, cell_fractions(observed.astype(np.uint8), self.spec)[0]))
        acc.cases += 1

    def methods(self) -> list[str]:
        return list(dict.fromkeys(m for m, _ in self._acc))

    def table(self) -> list[LeadScores]:
        """Scores by method and lead, in the order methods were first added and by lead."""
        out = []
        for (method, lead), acc in sorted(self._acc.items(), key=lambda kv: (self.methods().index(kv[0][0]), kv[0][1])):
            has_field = acc.fields > 0
            csi = float(self.cat_mod.det_cat_fct_compute(acc.cat, ["CSI"])["CSI"]) if has_field else float("nan")
            fss = float(self.fss_mod.fss_compute(acc.fss)) if has_field else float("nan")
            mae = float(self.cont_mod.det_cont_fct_compute(acc.cont, ["MAE"])["MAE"]) if has_field else float("nan")
            cell = float(np.mean(acc.cell)) if acc.cell else float("nan")
            out.append(LeadScores(method, lead, acc.cases, csi, fss, mae, cell))
        return out


def skill_table(scores: Sequence[LeadScores], leads: Sequence[timedelta] | None = None) -> str:
    """A plain-text table: one row per lead, CSI / FSS / MAE / cell similarity per method."""
    methods = list(dict.fromkeys(s.method for s in scores))
    by = {(s.method, s.lead): s for s in scores}
    all_leads = sorted({s.lead for s in scores}) if leads is None else list(leads)
    cases = {s.lead: s.cases for s in scores if s.method == methods[0]} if methods else {}
    head = f"{'lead':>6} {'cases':>5} " + " ".join(f"| {m[:22]:^31} " for m in methods)
    sub = f"{'':>6} {'':>5} " + " ".join(f"| {'CSI':>6} {'FSS':>6} {'MAE K':>7} {'cell':>6}  " for _ in methods)
    lines = [head, sub]
    for lead in all_leads:
        cells = []
        for m in methods:
            s = by.get((m, lead))
            cells.append(
                "| "
                + (" " * 29 if s is None else f"{s.csi:6.3f} {s.fss:6.3f} {s.mae_k:7.2f} {s.cell_similarity:6.3f}")
                + "  "
            )
        minutes = int(lead.total_seconds() // 60)
        lines.append(f"{minutes // 60:>3}:{minutes % 60:02d} {cases.get(lead, 0):>5} " + " ".join(cells))
    return "\n".join(lines)
