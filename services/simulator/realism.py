"""How much a simulated sequence looks like a real one: change between frames, spatial texture, values.

Each statistic is computed per channel on shrunk frames (what the models see), the same way for a real
sequence (the study's 25 COMS frames, 15 minutes apart) and a simulated one, so they can be read side by side:

* **frame-to-frame change**: mean and 90th percentile of |difference| between frames 15 minutes apart;
* **spatial spectrum**: radially averaged power in octave bands of wavelength, as a share of the total
  (which scales carry the texture), and the spectral slope;
* **values**: Wasserstein-1 distance (grey levels) and KS statistic between pooled grey-level samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from satwatch.services.frames.frame import Frame
from satwatch.services.simulator.calibration import ks_statistic, wasserstein_1d

#: Wavelength bands (pixels of the shrunk frame) the spectrum is summed over.
BANDS: tuple[tuple[float, float], ...] = ((2, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 300))


@dataclass(frozen=True)
class ChannelStats:
    """One channel's statistics over one sequence."""

    channel: str
    change_mean: float
    change_p90: float
    band_share: tuple[float, ...]
    slope: float
    values: npt.NDArray[np.uint8]


def _radial_power(plane: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    h, w = plane.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    f = np.fft.fftshift(np.abs(np.fft.fft2((plane - plane.mean()) * win)) ** 2)
    ky = np.fft.fftshift(np.fft.fftfreq(h))[:, None]
    kx = np.fft.fftshift(np.fft.fftfreq(w))[None, :]
    k = np.sqrt(kx**2 + ky**2)
    return k.ravel(), f.ravel()


def channel_stats(frames: Sequence[Frame], channel: str, cadence: timedelta = timedelta(minutes=15)) -> ChannelStats:
    """Statistics of ``channel`` over time-ordered frames; changes only between frames ``cadence`` apart."""
    c = frames[0].channels.index(channel)
    changes: list[npt.NDArray[np.float64]] = []
    for a, b in zip(frames[:-1], frames[1:], strict=True):
        if b.time - a.time == cadence:
            changes.append(np.abs(b.data[c].astype(np.float64) - a.data[c].astype(np.float64)).ravel())
    change = np.concatenate(changes) if changes else np.zeros(1)
    shares = np.zeros(len(BANDS))
    slopes: list[float] = []
    for fr in frames:
        k, p = _radial_power(fr.data[c].astype(np.float64))
        total = p[k > 0].sum()
        for i, (lo, hi) in enumerate(BANDS):
            sel = (k > 1.0 / hi) & (k <= 1.0 / lo)
            shares[i] += p[sel].sum() / total
        sel = (k > 1.0 / 64) & (k <= 1.0 / 4)
        slopes.append(float(np.polyfit(np.log(k[sel]), np.log(p[sel] + 1e-12), 1)[0]))
    values = np.concatenate([fr.data[c].ravel() for fr in frames])
    return ChannelStats(
        channel,
        float(change.mean()),
        float(np.percentile(change, 90)),
        tuple(float(s / len(frames)) for s in shares),
        float(np.mean(slopes)),
        values,
    )


@dataclass(frozen=True)
class Comparison:
    """A simulated channel's statistics beside the real one's, with the distance between their values."""

    real: ChannelStats
    sim: ChannelStats
    wasserstein: float
    ks: float


def compare(real: Sequence[Frame], sim: Sequence[Frame], channels: Sequence[str]) -> list[Comparison]:
    """Per channel, the real and simulated statistics and the distance between their grey-level samples."""
    out = []
    for ch in channels:
        r, s = channel_stats(real, ch), channel_stats(sim, ch)
        rng = np.random.default_rng(0)
        rv = rng.choice(r.values, size=min(r.values.size, 400_000), replace=False)
        sv = rng.choice(s.values, size=min(s.values.size, 400_000), replace=False)
        out.append(Comparison(r, s, wasserstein_1d(sv, rv), ks_statistic(sv, rv)))
    return out


def table(rows: Sequence[tuple[str, Comparison]]) -> str:
    """A Markdown table: one line per (label, channel) with change, spectrum and value distances."""
    bands = " | ".join(f"{lo:g}-{hi:g} px" for lo, hi in BANDS)
    head = f"| sequence | channel | mean abs change | p90 change | slope | {bands} | W1 vs real | KS vs real |"
    lines = [head, "|" + "---|" * (8 + len(BANDS) - 1)]
    seen: set[str] = set()
    for label, cmp in rows:
        if cmp.real.channel not in seen:
            seen.add(cmp.real.channel)
            lines.append(_row("real COMS", cmp.real, None))
        lines.append(_row(label, cmp.sim, cmp))
    return "\n".join(lines)


def _row(label: str, st: ChannelStats, cmp: Comparison | None) -> str:
    shares = " | ".join(f"{100 * s:.1f}%" for s in st.band_share)
    dist = f"{cmp.wasserstein:.2f} | {cmp.ks:.3f}" if cmp else "- | -"
    return (
        f"| {label} | {st.channel} | {st.change_mean:.2f} | {st.change_p90:.1f} | {st.slope:.2f} | {shares} | {dist} |"
    )
