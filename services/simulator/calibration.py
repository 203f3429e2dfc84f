"""Compare simulated brightness temperatures with real COMS-1 imagery.

Real data: the NMSC sample products in ``../shared/data/coms1`` (or ``$SATWATCH_COMS_DATA``): ``.npz`` files
holding one ``counts`` array, each with its ``*_calibration_IDF.txt`` table (``count:=kelvin`` lines).
Count 0 is space, so only the Earth disk (counts whose table value is positive) is compared.
Simulated grey levels become kelvin through the simulator's stated mapping
(:func:`satwatch.services.simulator.scene.count_to_kelvin`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from satwatch.services.frames.frame import CHANNELS
from satwatch.services.simulator.scene import SceneSimulator, SimConfig, count_to_kelvin

#: Real products compared by default: the East-Asia sector matches the simulated area best.
ENH_PRODUCTS: dict[str, str] = {
    "ir01": "IMG_ENH_01_IR1_20120101_000920_lrit",
    "wv": "IMG_ENH_01_WV_20120101_000920_lrit",
}
FD_PRODUCTS: dict[str, str] = {
    "ir01": "IMG_FD_01_IR1_20120101_024020_lrit",
    "wv": "IMG_FD_01_WV_20120101_024020_lrit",
}
#: Time of the ENH products; the simulation used for comparison starts here (same season and hour).
ENH_TIME = datetime(2012, 1, 1, 0, 0, tzinfo=UTC)
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def coms_data_dir() -> Path | None:
    """Where the real COMS samples are: ``$SATWATCH_COMS_DATA`` or ``../shared/data/coms1`` next to the repo."""
    env = os.environ.get("SATWATCH_COMS_DATA")
    candidates = [Path(env)] if env else []
    repo_root = Path(__file__).resolve().parents[2]
    candidates += [repo_root.parent / "shared" / "data" / "coms1", Path.cwd().parent / "shared" / "data" / "coms1"]
    for c in candidates:
        if c.is_dir() and any(c.glob("*.npz")):
            return c
    return None


def read_idf(path: str | Path) -> npt.NDArray[np.float64]:
    """A calibration table as 256 values indexed by count; counts without a temperature are NaN."""
    table = np.full(256, np.nan)
    for line in Path(path).read_text().splitlines():
        key, sep, value = line.strip().partition(":=")
        if sep and key.isdigit():
            v = float(value)
            table[int(key)] = v if v > 0 else np.nan
    return table


def real_brightness_temperature(data_dir: str | Path, product: str) -> npt.NDArray[np.float64]:
    """Kelvin of every Earth-disk pixel of one real product (space and uncalibrated counts dropped)."""
    d = Path(data_dir)
    with np.load(d / f"{product}.npz") as z:
        counts = np.asarray(z["counts"])
    table = read_idf(d / f"{product}_calibration_IDF.txt")
    if counts.dtype != np.uint8:
        raise ValueError(f"{product}: expected 8-bit counts, got {counts.dtype}")
    kelvin = table[counts.ravel()]
    return kelvin[(counts.ravel() > 0) & np.isfinite(kelvin)]


def simulated_brightness_temperature(
    cfg: SimConfig, channels: tuple[str, ...] = ("ir01", "wv"), every: int = 8, max_frames: int | None = None
) -> dict[str, npt.NDArray[np.float64]]:
    """Kelvin of the pixels of every ``every``-th simulated frame, through the simulator's grey mapping."""
    luts = {c: count_to_kelvin(np.arange(256), c) for c in channels}
    parts: dict[str, list[npt.NDArray[np.float64]]] = {c: [] for c in channels}
    n = 0
    for i, frame in enumerate(SceneSimulator(cfg).frames()):
        if i % every:
            continue
        for c in channels:
            parts[c].append(luts[c][frame.data[CHANNELS.index(c)].ravel()])
        n += 1
        if max_frames is not None and n >= max_frames:
            break
    out = {}
    for c in channels:
        k = np.concatenate(parts[c])
        out[c] = k[np.isfinite(k)]
    return out


@dataclass(frozen=True)
class DistributionComparison:
    """How close two brightness-temperature distributions are."""

    channel: str
    quantiles: tuple[float, ...]
    sim_k: tuple[float, ...]
    real_k: tuple[float, ...]
    wasserstein_k: float
    ks: float
    sim_mean_k: float
    real_mean_k: float
    n_sim: int
    n_real: int

    def table(self) -> str:
        """A Markdown table of the quantiles."""
        rows = [f"| {self.channel} | " + " | ".join(f"{q:g}" for q in self.quantiles) + " |"]
        rows.append("|---|" + "---|" * len(self.quantiles))
        rows.append("| sim (K) | " + " | ".join(f"{v:.1f}" for v in self.sim_k) + " |")
        rows.append("| real (K) | " + " | ".join(f"{v:.1f}" for v in self.real_k) + " |")
        return "\n".join(rows)


#: Step (K) of the grid on which CDFs are compared: finer than any count step of the IR/WV tables.
GRID_STEP_K = 0.02


def _cdfs(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    lo = min(xa.min(), xb.min()) - GRID_STEP_K
    hi = max(xa.max(), xb.max()) + GRID_STEP_K
    step = max(GRID_STEP_K, (hi - lo) / 1_000_000)  # bound memory for very wide ranges
    edges = np.arange(lo, hi + step, step)
    ha, _ = np.histogram(xa, bins=edges)
    hb, _ = np.histogram(xb, bins=edges)
    return np.cumsum(ha) / max(ha.sum(), 1), np.cumsum(hb) / max(hb.sum(), 1), float(step)


def wasserstein_1d(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Earth mover's distance between two samples (in their units), from CDFs on a 0.02-step grid."""
    ca, cb, step = _cdfs(a, b)
    return float(np.sum(np.abs(ca - cb)) * step)


def ks_statistic(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: largest gap between the empirical CDFs."""
    ca, cb, _ = _cdfs(a, b)
    return float(np.max(np.abs(ca - cb)))


def compare_distributions(
    sim_k: npt.ArrayLike, real_k: npt.ArrayLike, channel: str, quantiles: tuple[float, ...] = QUANTILES
) -> DistributionComparison:
    """Quantiles, Wasserstein-1 distance (K) and KS statistic between simulated and real kelvin samples."""
    s = np.asarray(sim_k, dtype=np.float64)
    r = np.asarray(real_k, dtype=np.float64)
    if s.size == 0 or r.size == 0:
        raise ValueError("both samples must be non-empty")
    return DistributionComparison(
        channel=channel,
        quantiles=quantiles,
        sim_k=tuple(float(v) for v in np.quantile(s, quantiles)),
        real_k=tuple(float(v) for v in np.quantile(r, quantiles)),
        wasserstein_k=wasserstein_1d(s, r),
        ks=ks_statistic(s, r),
        sim_mean_k=float(s.mean()),
        real_mean_k=float(r.mean()),
        n_sim=int(s.size),
        n_real=int(r.size),
    )


def compare_with_coms(
    data_dir: str | Path,
    cfg: SimConfig | None = None,
    products: dict[str, str] | None = None,
    every: int = 8,
    max_frames: int | None = None,
) -> list[DistributionComparison]:
    """Simulate (by default one day from the ENH products' time, no events) and compare ir01 and wv."""
    cfg = cfg or SimConfig(seed=7, start=ENH_TIME, days=1.0, events=False)
    cfg = replace(cfg, events=False)
    products = products or ENH_PRODUCTS
    sim = simulated_brightness_temperature(cfg, tuple(products), every=every, max_frames=max_frames)
    return [compare_distributions(sim[c], real_brightness_temperature(data_dir, p), c) for c, p in products.items()]
