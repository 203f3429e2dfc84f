"""Pictures of nowcasts (the ``[plot]`` extra): forecasts beside what happened, and skill by lead time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np

from satwatch.services.nowcast.analog import frame_at
from satwatch.services.nowcast.forecast import FrameSource, load_shrunk
from satwatch.services.nowcast.run import NowcastRun
from satwatch.services.nowcast.verify import SCORED_CHANNEL, LeadScores, cold_cloud_grey

PLOT_LEADS = (timedelta(hours=1), timedelta(hours=2), timedelta(hours=3))


def plot_run(run: NowcastRun, source: FrameSource, path: str | Path, channel: str = SCORED_CHANNEL) -> Path:
    """One row per method (and the observed frames first, where the source holds them), one column per lead
    of 1, 2 and 3 h, after the latest frame; the cold-cloud edge (235 K) drawn over each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = run.input
    ch = data.channels.index(channel) if channel in data.channels else 0
    leads = [lead for lead in PLOT_LEADS if lead in data.leads]
    rows: list[tuple[str, list[np.ndarray | None]]] = []
    observed = []
    for lead in leads:
        t = frame_at(source, data.issued, lead, data.cadence / 2)
        observed.append(None if t is None else load_shrunk(source, t)[ch].astype(np.float32))
    if any(o is not None for o in observed):
        rows.append(("observed", observed))
    for name, fc in run.forecasts.items():
        rows.append((name, [fc.at(lead)[ch] for lead in leads]))
    thr = cold_cloud_grey()
    fig, axes = plt.subplots(len(rows), len(leads) + 1, figsize=(3.2 * (len(leads) + 1), 2.7 * len(rows)))
    axes = np.atleast_2d(axes)
    for r, (name, fields) in enumerate(rows):
        ax = axes[r, 0]
        ax.imshow(data.frames[-1, ch], cmap="gray", vmin=0, vmax=255)
        ax.set_ylabel(name)
        ax.set_title(f"latest {data.issued:%m-%d %H:%MZ}" if r == 0 else "", fontsize=9)
        for c, (lead, field) in enumerate(zip(leads, fields, strict=True)):
            ax = axes[r, c + 1]
            if field is not None and np.isfinite(field).any():
                ax.imshow(field, cmap="gray", vmin=0, vmax=255)
                ax.contour(field >= thr, levels=[0.5], colors="tab:cyan", linewidths=0.5)
            if r == 0:
                ax.set_title(f"+{lead.total_seconds() / 3600:g} h", fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{channel} nowcasts issued {data.issued:%Y-%m-%d %H:%MZ}; cyan: cold cloud <= 235 K", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_skill(scores: Sequence[LeadScores], path: str | Path, title: str = "") -> Path:
    """CSI, FSS, MAE and cell similarity against lead time, a line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("csi", "CSI (cold cloud)"), ("fss", "FSS (cold cloud, 9 px)"), ("mae_k", "MAE (K)")]
    panels.append(("cell_similarity", "cell similarity (study metric)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    methods = list(dict.fromkeys(s.method for s in scores))
    for ax, (attr, label) in zip(axes, panels, strict=True):
        for m in methods:
            rows = sorted((s for s in scores if s.method == m), key=lambda s: s.lead)
            x = [s.lead.total_seconds() / 3600 for s in rows]
            y = [getattr(s, attr) for s in rows]
            if np.isfinite(y).any():
                ax.plot(x, y, marker=".", label=m)
        ax.set_xlabel("lead (h)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8)  # the cell panel has every method, the histogram composite included
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
