"""``analog_blend``: persistence corrected by the analogs, with a weight per lead learned on a development period.

Measured on the texture scene (BENCHMARKS.md, nowcast), the latest frame is the best forecast for the first
quarter-hours and the analogs' composite (what followed similar days, which knows the hour of day and how
such weather tends to end up) is better by two or three hours; neither alone wins at every lead. The blend
is, per lead L and pixel,

    forecast = latest + a_L * tendency + b_L * (composite - latest)

where ``tendency`` is the analogs' similarity-weighted change from their window's end to L (``analog_change``
minus the latest frame) and ``composite`` their weighted frame at L (``analog``). ``a_L`` and ``b_L`` are the
least-squares fit of the observed change on a development period (:class:`BlendFit`), never the held-out
one. With a = b = 0 it is persistence; a lead with no analog frame falls back to persistence.
``analog_flow_blend`` is the same with pysteps' optical-flow forecast in place of the latest frame (today's
clouds moved by their own motion, then pulled towards similar days), with its own fitted weights.

:data:`DEFAULT_BLEND` and :data:`DEFAULT_FLOW_BLEND` hold the weights fitted by ``benchmarks/bench_nowcast.py
--scene texture`` on its development period; another satellite or climate should fit its own (``BlendFit`` on
a few days of its archive, saved with :meth:`BlendWeights.to_json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from satwatch.services.nowcast.analog import composite_and_change
from satwatch.services.nowcast.forecast import Forecast, NowcastInput


@dataclass(frozen=True)
class BlendWeights:
    """Per lead (minutes): (a, b), the weights of the analogs' tendency and of their composite's departure
    from the latest frame. A lead not listed takes the nearest listed one."""

    weights: dict[int, tuple[float, float]] = field(default_factory=dict)
    source: str = ""

    def at(self, lead: timedelta) -> tuple[float, float]:
        if not self.weights:
            return 0.0, 0.0
        minutes = int(lead.total_seconds() // 60)
        nearest = min(self.weights, key=lambda m: abs(m - minutes))
        return self.weights[nearest]

    def to_json(self) -> str:
        return json.dumps(
            {"source": self.source, "weights": {str(m): list(ab) for m, ab in sorted(self.weights.items())}}, indent=1
        )

    @classmethod
    def from_json(cls, text: str) -> BlendWeights:
        d: dict[str, Any] = json.loads(text)
        return cls({int(m): (float(ab[0]), float(ab[1])) for m, ab in d["weights"].items()}, str(d.get("source", "")))


class BlendFit:
    """Least-squares fit of the blend weights per lead, accumulated case by case (normal equations, so a long
    development period costs no memory): observed - latest ~ a * tendency + b * (composite - latest)."""

    def __init__(self, ridge: float = 1e-6) -> None:
        self.ridge = ridge
        self._xtx: dict[int, np.ndarray] = {}
        self._xty: dict[int, np.ndarray] = {}
        self.cases: dict[int, int] = {}

    def add(
        self, lead: timedelta, latest: np.ndarray, tendency: np.ndarray, composite: np.ndarray, observed: np.ndarray
    ) -> None:
        """One case at one lead: planes of the same shape (grey levels); NaN pixels are left out. ``latest`` is
        the base forecast the blend starts from (the latest frame, or the optical-flow forecast)."""
        x1 = tendency.astype(np.float64).ravel()
        x2 = (composite.astype(np.float64) - latest).ravel()
        y = (observed.astype(np.float64) - latest).ravel()
        ok = np.isfinite(x1) & np.isfinite(x2) & np.isfinite(y)
        if not ok.any():
            return
        x = np.stack([x1[ok], x2[ok]], axis=1)
        m = int(lead.total_seconds() // 60)
        self._xtx[m] = self._xtx.get(m, np.zeros((2, 2))) + x.T @ x
        self._xty[m] = self._xty.get(m, np.zeros(2)) + x.T @ y[ok]
        self.cases[m] = self.cases.get(m, 0) + 1

    def weights(self, source: str = "") -> BlendWeights:
        """The fitted (a, b) per lead, b kept within [0, 1] (a blend, never an extrapolation past either)."""
        out: dict[int, tuple[float, float]] = {}
        for m, xtx in self._xtx.items():
            reg = xtx + self.ridge * np.trace(xtx) * np.eye(2)
            a, b = np.linalg.solve(reg, self._xty[m])
            if not 0.0 <= b <= 1.0:  # refit a with b at the bound
                b = float(np.clip(b, 0.0, 1.0))
                a = (self._xty[m][0] - b * xtx[0, 1]) / max(xtx[0, 0], 1e-12)
            out[m] = (round(float(a), 4), round(float(b), 4))
        return BlendWeights(dict(sorted(out.items())), source)


#: Fitted by ``python benchmarks/bench_nowcast.py --scene texture`` on its development period (texture scene,
#: seed 801, 2024-06-01..02, analogs from seed 501's 8 days); see docs/nowcast.md.
DEFAULT_BLEND = BlendWeights(
    {
        15: (-0.0235, 0.0867),
        30: (-0.095, 0.2345),
        45: (-0.1296, 0.3404),
        60: (-0.164, 0.4298),
        75: (-0.1983, 0.516),
        90: (-0.2239, 0.5773),
        105: (-0.2368, 0.6275),
        120: (-0.2477, 0.6674),
        135: (-0.2504, 0.7014),
        150: (-0.2442, 0.7229),
        165: (-0.2354, 0.7388),
        180: (-0.2259, 0.7549),
    },
    "texture scene dev period",
)


#: Fitted the same way with the optical-flow forecast as the base (``analog_flow_blend``).
DEFAULT_FLOW_BLEND = BlendWeights(
    {
        15: (0.0192, 0.0192),
        30: (-0.0338, 0.1268),
        45: (-0.0685, 0.2282),
        60: (-0.1133, 0.3289),
        75: (-0.1579, 0.4303),
        90: (-0.1944, 0.5074),
        105: (-0.2169, 0.5722),
        120: (-0.2351, 0.6237),
        135: (-0.2437, 0.667),
        150: (-0.2435, 0.6976),
        165: (-0.2415, 0.7231),
        180: (-0.2376, 0.7473),
    },
    "texture scene dev period, optical flow base",
)


def _blend(
    data: NowcastInput, weights: BlendWeights | None, base: np.ndarray | None = None
) -> tuple[np.ndarray, list[int]]:
    w = weights if weights is not None else DEFAULT_BLEND
    composite, change, used = composite_and_change(data)
    last = data.frames[-1].astype(np.float32)
    fields = np.empty_like(composite)
    for i, lead in enumerate(data.leads):
        a, b = w.at(lead)
        start = last if base is None else base[i]
        tendency = change[i] - last
        out = start + a * tendency + b * (composite[i] - start)
        fields[i] = np.where(np.isfinite(out), np.clip(out, 0, 255), start)
    return fields, used


def analog_blend(data: NowcastInput, weights: BlendWeights | None = None) -> Forecast:
    """The latest frame plus the weighted analog tendency and the weighted pull towards the analogs' composite."""
    fields, used = _blend(data, weights)
    return Forecast("analog_blend", data.issued, data.leads, fields, {"analogs": len(data.analogs), "used": used})


def analog_flow_blend(data: NowcastInput, weights: BlendWeights | None = None) -> Forecast:
    """``analog_blend`` on top of optical flow instead of persistence: today's clouds moved by their own motion
    (pysteps, the ``[nowcast]`` extra), then pulled towards what followed similar days; weights fitted with the
    flow forecast as the base (:data:`DEFAULT_FLOW_BLEND` by default)."""
    from satwatch.services.nowcast.optical_flow import optical_flow

    flow = optical_flow(data).fields
    fields, used = _blend(data, weights if weights is not None else DEFAULT_FLOW_BLEND, base=flow)
    return Forecast("analog_flow_blend", data.issued, data.leads, fields, {"analogs": len(data.analogs), "used": used})


#: The methods that take fitted weights (``NowcastOptions.blend``).
BLEND_METHODS = {"analog_blend": analog_blend, "analog_flow_blend": analog_flow_blend}
