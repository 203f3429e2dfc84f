"""Realistic window embeddings for the index benchmark: the shipped encoder on a long simulated archive, and a
generator fitted to them that produces millions of time-ordered window vectors with the same structure.

Why a generator: an HNSW graph built in time order sees each new window right next to the previous one (19
of 20 frames shared), so its recall depends on how window embeddings move in time. Encoding a million
windows (10,000 days) is out of reach on two cores; a few months are not. The generator is fitted to those
months and checked against them (step sizes, nearest-neighbour distances, intrinsic dimension).

Model (fitted in the PCA space of the real *frame* embeddings, windows are then the mean of 20 frames, as
the detector makes them):

* a daily cycle: the mean of each component per time of day;
* per component, an AR(1) process (``z_t = phi z_{t-1} + e_t``) with that component's variance and
  persistence, which carries weather regimes and how long they last;
* per component, white noise for the per-frame jitter the AR part does not explain;

so window steps, neighbour distances and the variance spectrum come from the data, not from guesses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from tqdm import tqdm

WINDOW = 20
#: Frames a day at the 15-minute cadence.
PER_DAY = 96


def embed_simulated_archive(
    path: Path, days: float, seed: int = 11, start: datetime = datetime(2024, 1, 1, tzinfo=UTC), batch: int = 48
) -> np.ndarray:
    """Frame embeddings (n, dim) of a simulated archive (375 x 300, events on), cached in ``path`` (npz)."""
    if path.is_file():
        with np.load(path) as z:
            if float(z["days"]) >= days and int(z["seed"]) == seed:
                return np.asarray(z["frames"][: int(round(days * PER_DAY))], np.float32)
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.simulator.scene import SceneSimulator, SimConfig

    enc = FrameEncoder.load(threads=1)
    sim = SceneSimulator(SimConfig(seed=seed, days=days, start=start, geography=7))
    out: list[np.ndarray] = []
    buf: list[np.ndarray] = []
    t0 = time.perf_counter()
    for frame in tqdm(sim.frames(), total=sim.cfg.n_frames, desc="simulate + encode", unit="frame"):
        buf.append(frame.data)
        if len(buf) == batch:
            out.append(enc.encode(np.stack(buf)))
            buf = []
    if buf:
        out.append(enc.encode(np.stack(buf)))
    frames = np.vstack(out).astype(np.float32)
    _save(path, days, seed, start, enc.card.version, t0, frames=frames)
    return frames


def _save(path: Path, days: float, seed: int, start: datetime, encoder: str, t0: float, **arrays: np.ndarray) -> None:
    """Cache an archive's vectors with what made them (the cache is reused only for the same days, seed, encoder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        days=days,
        seed=seed,
        start=start.isoformat(),
        encoder=encoder,
        seconds=time.perf_counter() - t0,
        **arrays,  # type: ignore[arg-type]
    )


def embed_simulated_windows(
    path: Path,
    days: float,
    seed: int = 11,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    batch: int = 48,
    model_dir: str | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """For an encoder that maps the window (v2: ``map_of_mean`` / ``map_of_part_means``): per-frame vectors
    the generator is fitted to, and the archive's real window vectors (stride 1) it is checked against,
    cached in ``path`` (npz), plus the encoder's version.

    A v2 window vector is the learned map of the window's mean histograms, not a mean of frame vectors, so
    the generator is fitted to each frame's histograms mapped alone (a one-frame window; for a parts
    encoder each part's block is that frame's map) and its windows are the block-wise part means of those
    (:func:`windows_of` with ``parts``). ``structure`` on both says how close that comes to the real thing.
    """
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.simulator.scene import SceneSimulator, SimConfig

    enc = FrameEncoder.load(model_dir, threads=1)
    if path.is_file():
        with np.load(path) as z:
            if float(z["days"]) >= days and int(z["seed"]) == seed and str(z["encoder"]) == enc.card.version:
                n = int(round(days * PER_DAY))
                return (
                    z["frames"][:n].astype(np.float32),
                    z["windows"][: n - WINDOW + 1].astype(np.float32),
                    str(z["encoder"]),
                )
    sim = SceneSimulator(SimConfig(seed=seed, days=days, start=start, geography=7))
    frames: list[np.ndarray] = []
    windows: list[np.ndarray] = []
    recent: list[np.ndarray] = []  # the last WINDOW frames' histograms
    buf: list[np.ndarray] = []
    t0 = time.perf_counter()

    def flush() -> None:
        feats = enc.encode(np.stack(buf)).astype(np.float64)
        buf.clear()
        frames.append(enc.embed_windows(np.tile(feats, (1, enc.parts))))
        inputs = []
        for f in feats:
            recent.append(f)
            del recent[:-WINDOW]
            if len(recent) == WINDOW:
                inputs.append(enc.window_input(np.stack(recent)))
        if inputs:
            windows.append(enc.embed_windows(np.stack(inputs)))

    for frame in tqdm(sim.frames(), total=sim.cfg.n_frames, desc="simulate + encode", unit="frame", disable=None):
        buf.append(frame.data)
        if len(buf) == batch:
            flush()
    if buf:
        flush()
    out_f, out_w = np.vstack(frames).astype(np.float32), np.vstack(windows).astype(np.float32)
    _save(path, days, seed, start, enc.card.version, t0, frames=out_f, windows=out_w)
    return out_f, out_w, enc.card.version


def windows_of(frames: np.ndarray, size: int = WINDOW, parts: int = 1) -> np.ndarray:
    """Sliding-window means (stride 1) of consecutive frame vectors: the detector's window embeddings.

    With ``parts`` > 1 the vectors are ``parts`` blocks and block j of a window is the mean of block j over
    the window's j-th part (``part_bounds``), as a parts encoder lays out its index vector.
    """
    from satwatch.services.models.embedding import part_bounds

    c = np.cumsum(np.vstack([np.zeros((1, frames.shape[1])), frames.astype(np.float64)]), axis=0)
    if parts == 1:
        return ((c[size:] - c[:-size]) / size).astype(np.float32)
    n, block = len(frames) - size + 1, frames.shape[1] // parts
    out = np.empty((n, frames.shape[1]), np.float32)
    for j, (a, b) in enumerate(part_bounds(size, parts)):
        cols = slice(j * block, (j + 1) * block)
        out[:, cols] = (c[b : b + n, cols] - c[a : a + n, cols]) / (b - a)
    return out


@dataclass
class FittedGenerator:
    """Frame embeddings as a daily cycle plus, per principal component, an AR(1) process (see module doc)."""

    mean: np.ndarray  # (dim,)
    basis: np.ndarray  # (dim, dim) rows = principal axes
    daily: np.ndarray  # (PER_DAY, dim) mean per time of day, PCA space
    phi: np.ndarray  # (dim,) AR coefficient per 15-minute step
    sd: np.ndarray  # (dim,) stationary sd of the AR part
    white: np.ndarray  # (dim,) sd of per-frame white noise on top

    @classmethod
    def fit(cls, frames: np.ndarray, lags: tuple[int, int] = (4, 8)) -> FittedGenerator:
        """Fit to time-ordered frame embeddings (n, dim) at the 15-minute cadence.

        Each component's AR coefficient comes from its autocovariance at two lags (gamma(l2) / gamma(l1) =
        phi^(l2 - l1)), so per-frame jitter does not pass for fast dynamics; what the AR part does not
        explain of the variance becomes white noise. Lags of 4 and 8 frames (1 and 2 hours) matched the real
        step sizes, event distances and variance spectrum best (BENCHMARKS.md).
        """
        x = frames.astype(np.float64)
        mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        z = (x - mean) @ vt.T
        phase = np.arange(len(z)) % PER_DAY
        daily = np.stack([z[phase == p].mean(0) for p in range(PER_DAY)])
        r = z - daily[phase]
        l1, l2 = lags
        dim = r.shape[1]
        phi, var, g0 = np.empty(dim), np.empty(dim), (r**2).mean(0)
        for j in range(dim):
            a = float(np.mean(r[l1:, j] * r[:-l1, j]))
            b = float(np.mean(r[l2:, j] * r[:-l2, j]))
            p = (b / a) ** (1 / (l2 - l1)) if a > 0 and b > 0 else 0.5
            phi[j] = min(max(p, 0.5), 0.99995)
            var[j] = min(a / phi[j] ** l1 if a > 0 else 0.0, g0[j])
        return cls(mean, vt, daily, phi, np.sqrt(var), np.sqrt(np.maximum(g0 - var, 0.0)))

    def frames(self, n: int, rng: np.random.Generator, start_phase: int = 0) -> np.ndarray:
        """``n`` time-ordered frame vectors (float32), started in the stationary distribution."""
        dim = len(self.mean)
        out = np.empty((n, dim), np.float32)
        s = rng.standard_normal(dim) * self.sd
        step_sd = self.sd * np.sqrt(1 - self.phi**2)
        block = 65536
        for lo in range(0, n, block):
            m = min(block, n - lo)
            e = rng.standard_normal((m, dim)) * step_sd
            z = np.empty((m, dim))
            for i in range(m):
                s = self.phi * s + e[i]
                z[i] = s
            z += rng.standard_normal((m, dim)) * self.white
            z += self.daily[(start_phase + lo + np.arange(m)) % PER_DAY]
            out[lo : lo + m] = (z @ self.basis + self.mean).astype(np.float32)
        return out

    def windows(self, n: int, rng: np.random.Generator, start_phase: int = 0, parts: int = 1) -> np.ndarray:
        """``n`` time-ordered window vectors (mean of 20 consecutive generated frames, by part)."""
        return windows_of(self.frames(n + WINDOW - 1, rng, start_phase), parts=parts)


def frame_times(n: int, start: datetime = datetime(1990, 1, 1, tzinfo=UTC)) -> list[datetime]:
    """Window end times at the 15-minute cadence (1M windows span 28.5 years)."""
    step = timedelta(minutes=15)
    return [start + i * step for i in range(n)]


def structure(windows: np.ndarray, rng: np.random.Generator, sample: int = 400) -> dict[str, float]:
    """Figures that decide HNSW recall on time-ordered windows, to compare real and generated vectors.

    Step sizes (consecutive windows), the distance to the nearest *other event* (the nearest window sharing
    no frame, |dt| >= 20) and to the 10th such, their ratio to the step (how far apart past visits are in
    units of one step), and intrinsic dimension (PCA components for 90 / 99% of variance; TwoNN on
    non-overlapping neighbours).
    """
    w = windows.astype(np.float64)
    n = len(w)
    steps = np.linalg.norm(np.diff(w, axis=0), axis=1)
    idx = rng.choice(n, min(sample, n), replace=False)
    norms = (w**2).sum(1)
    d1, d2, d10 = [], [], []
    for i in idx:
        d = norms - 2 * w @ w[i] + norms[i]
        d[max(0, i - WINDOW + 1) : i + WINDOW] = np.inf
        # distinct events: after taking a neighbour, drop its own overlapping windows too
        near = []
        for _ in range(10):
            j = int(np.argmin(d))
            near.append(float(np.sqrt(max(d[j], 0.0))))
            d[max(0, j - WINDOW + 1) : j + WINDOW] = np.inf
        d1.append(near[0])
        d2.append(near[1])
        d10.append(near[9])
    ev = np.linalg.svd(w - w.mean(0), compute_uv=False) ** 2
    cum = np.cumsum(ev) / ev.sum()
    mu = np.array(d2) / np.maximum(np.array(d1), 1e-12)
    two_nn = len(mu) / float(np.sum(np.log(np.maximum(mu, 1 + 1e-12))))
    med_step = float(np.median(steps))
    return {
        "windows": float(n),
        "step_p50": med_step,
        "step_p90": float(np.percentile(steps, 90)),
        "step_p99": float(np.percentile(steps, 99)),
        "step_max_over_p50": float(steps.max() / med_step),
        "nn_event_p10": float(np.percentile(d1, 10)),
        "nn_event_p50": float(np.median(d1)),
        "nn_event_p90": float(np.percentile(d1, 90)),
        "nn10_event_p50": float(np.median(d10)),
        "nn_event_over_step": float(np.median(d1) / med_step),
        "pca_90": float(np.searchsorted(cum, 0.90) + 1),
        "pca_99": float(np.searchsorted(cum, 0.99) + 1),
        "two_nn": float(two_nn),
        "spread_rms": float(np.sqrt(((w - w.mean(0)) ** 2).sum(1).mean())),
    }
