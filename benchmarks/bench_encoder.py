"""Encoders against the ground truth on held-out windows: simulated test block and the study's real frames.

    python benchmarks/bench_encoder.py [--model-dir DIR ...] [--days 42] [--min-frames 4]

For each model folder (default: the shipped encoder), with ONNX Runtime only:

* simulated: the test block (last 60%) of the simulated archive the encoders were trained on (seed 101,
  42 days at 375 x 300 by default), windows of 20 frames every 4th start, never seen in training or
  model selection;
* texture (``--texture DIR``, repeatable): every window (20 frames, every 2nd start) of a held-out
  texture-scene archive (``satwatch simulate --scene texture``: real COMS textures moved and evolved);
* real: windows cut by the one window rule from the 25 real COMS frames in ../shared/data/study/raw_images
  (2011-03-03 06:45-13:15 UTC; 6 full windows, so part-filled ones of at least --min-frames frames are used
  too; their ground truth compares the latest frames both windows hold, as everywhere in satwatch).

Per set: Pearson and Spearman of ground-truth similarity against embedding distance on all pairs, on
disjoint pairs (windows sharing no frame) and on the study's kind of pairs (each window with one of its 10%
most similar and one less similar window, ``make_triplets``); recall@10 against the exact ranking;
the top-10's mean ground-truth similarity against the best possible top-10 and the share of the
achievable gain over a random top-10: (top-10 - random) / (best - random), averaged over queries as means.
Candidates of a simulated query are the windows sharing no frame with it; on the real frames, where only
two windows are disjoint from any full window, every other window is a candidate (said in the output).
A window's vector is what the detector indexes: the card's window embedding (v1: mean of frame embeddings;
v2: map of the mean per-cell histograms).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import shrink
from satwatch.services.metric.groundtruth import GridSpec, frame_signature, pairwise_similarity, window_signature
from satwatch.services.metric.study import make_triplets
from satwatch.services.models.embedding import FrameEncoder
from satwatch.services.models.modelcard import packaged_model_dir
from satwatch.services.training.data import FrameSet
from satwatch.services.training.metrics import pairwise_distances, pearson, spearman

SPEC = GridSpec(n=24, bins=20, mode="general")
REPO = Path(__file__).resolve().parents[1]


@dataclass
class WindowSet:
    """Frames (N,4,H,W), windows as lists of frame indices (possibly part-filled) and the candidate rule."""

    name: str
    data: np.ndarray
    windows: list[np.ndarray]
    sim: np.ndarray
    apart: np.ndarray  # pairs sharing no frame
    candidates: np.ndarray  # which windows a query may return


def _block_set(name: str, fs: FrameSet, block: range, stride: int) -> WindowSet:
    """Full windows every ``stride``-th start inside ``block``; candidates are the windows sharing no frame."""
    from satwatch.services.training.data import block_windows

    wins = block_windows(fs.times, block, 20, stride)
    lo = int(wins.min())
    data = fs.data[lo : int(wins.max()) + 1]
    sigs = [frame_signature(f, SPEC) for f in data]
    rel = [w - lo for w in wins]
    sim = pairwise_similarity([window_signature([sigs[i] for i in w]) for w in rel])
    starts = wins[:, 0]
    apart = np.abs(starts[:, None] - starts[None, :]) >= 20
    return WindowSet(name, data, rel, sim, apart, apart)


def _sets(days: float, min_frames: int, cache: Path, textures: list[Path]) -> list[WindowSet]:
    from satwatch.services.training.data import load_archive, simulate_frames, split_blocks

    fs = simulate_frames(101, days, True, cache_dir=cache)
    out = [_block_set(f"simulated test block (seed 101, {days:g} d)", fs, split_blocks(len(fs))[2], 4)]
    for root in textures:
        tex = load_archive(root, progress=False)
        name = f"texture scene {root.name} ({len(tex)} frames, windows every 2nd start)"
        out.append(_block_set(name, tex, range(len(tex)), 2))

    raw = REPO.parent / "shared" / "data" / "study" / "raw_images"
    if raw.is_dir():
        archive = Archive(raw, "COMS-1")
        data = np.stack([shrink(archive.load(t)).data for t in archive.times])
        index = {t: i for i, t in enumerate(archive.times)}
        rw = [np.array([index[t] for t in w]) for w in archive.windows(20, 1, min_frames)]
        sigs = [frame_signature(f, SPEC) for f in data]
        sim = pairwise_similarity([window_signature([sigs[i] for i in w]) for w in rw])
        sets = [set(w.tolist()) for w in rw]
        apart = np.array([[not (a & b) for b in sets] for a in sets])
        full = sum(len(w) == 20 for w in rw)
        name = f"real COMS frames ({len(data)} frames, {len(rw)} windows of {min_frames}-20 frames, {full} full)"
        out.append(WindowSet(name, data, rw, sim, apart, ~np.eye(len(rw), dtype=bool)))
    return out


def _vectors(encoder: FrameEncoder, ws: WindowSet) -> np.ndarray:
    per_frame = np.concatenate([encoder.encode(ws.data[s : s + 16]) for s in range(0, len(ws.data), 16)])
    return encoder.embed_windows(np.stack([encoder.window_input(per_frame[w]) for w in ws.windows]))


def _measures(ws: WindowSet, dist: np.ndarray, k: int = 10) -> dict[str, float]:
    sim, m = ws.sim, len(ws.sim)
    iu = np.triu_indices(m, 1)
    keep = ws.apart[iu]
    rng = np.random.default_rng(0)
    trips = make_triplets(sim, list(range(m)), rng, near_fraction=0.1)
    tx = np.array([t.x - 1 for t in trips] * 2)
    ty = np.array([t.y - 1 for t in trips] + [t.z - 1 for t in trips])
    got, best, rnd, recall = [], [], [], []
    for i in range(m):
        cand = np.flatnonzero(ws.candidates[i] & (np.arange(m) != i))
        if len(cand) < k:
            continue
        by_emb = cand[np.argsort(dist[i, cand], kind="stable")[:k]]
        by_gt = cand[np.argsort(-sim[i, cand], kind="stable")[:k]]
        got.append(sim[i, by_emb].mean())
        best.append(sim[i, by_gt].mean())
        rnd.append(sim[i, cand].mean())
        recall.append(len(set(by_emb.tolist()) & set(by_gt.tolist())) / k)
    g, b, r = float(np.mean(got)), float(np.mean(best)), float(np.mean(rnd))
    return {
        "pearson_all": pearson(sim[iu], dist[iu]),
        "spearman_all": spearman(sim[iu], dist[iu]),
        "pearson_disjoint": pearson(sim[iu][keep], dist[iu][keep]) if keep.sum() > 2 else float("nan"),
        "spearman_disjoint": spearman(sim[iu][keep], dist[iu][keep]) if keep.sum() > 2 else float("nan"),
        "disjoint_pairs": int(keep.sum()),
        "pearson_study_pairs": pearson(sim[tx, ty], dist[tx, ty]),
        "spearman_study_pairs": spearman(sim[tx, ty], dist[tx, ty]),
        "study_pairs": len(tx),
        "recall_at_10": float(np.mean(recall)),
        "top10_mean_similarity": g,
        "best_top10_mean_similarity": b,
        "random_top10_mean_similarity": r,
        "share_of_achievable_gain": (g - r) / (b - r),
        "queries": len(got),
    }


def _per_frame_ms(encoder: FrameEncoder, data: np.ndarray, calls: int = 60) -> tuple[float, float]:
    """Median ms of the detector's per-frame encoder work beyond signing: the frame's vector from its
    signature, the rolling window's running-sum update and its input (the window mean, or v2.1's part
    means), then the window's vector (one call each, as the detector does)."""
    from datetime import UTC, datetime, timedelta
    from time import perf_counter

    from satwatch.services.detection.window import RollingWindow, WindowEntry

    sigs = [frame_signature(data[i % len(data)], SPEC) for i in range(calls)]
    window = RollingWindow(20, timedelta(hours=6))
    t = datetime(2024, 1, 1, tzinfo=UTC)
    frame_ms, window_ms = [], []
    for i, sig in enumerate(sigs):
        t0 = perf_counter()
        vec = encoder.encode_signatures([sig])[0]
        window.add(WindowEntry(t + timedelta(minutes=15 * i), vec))
        x = window.part_means(encoder.parts)
        t1 = perf_counter()
        encoder.embed_windows(x[None])
        t2 = perf_counter()
        frame_ms.append(1e3 * (t1 - t0))
        window_ms.append(1e3 * (t2 - t1))
    return float(np.median(frame_ms[20:])), float(np.median(window_ms[20:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, action="append", help="encoder folder (repeat); default: shipped")
    ap.add_argument("--days", type=float, default=42.0, help="length of the simulated archive (seed 101)")
    ap.add_argument("--min-frames", type=int, default=4, help="real frames: smallest part-filled window")
    ap.add_argument("--cache", type=Path, default=Path("var/cache/training"))
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument(
        "--texture",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also a held-out texture-scene archive (satwatch simulate --scene texture; repeatable)",
    )
    args = ap.parse_args()
    folders = args.model_dir or [packaged_model_dir()]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    sets = _sets(args.days, args.min_frames, args.cache, args.texture)
    report: dict[str, dict[str, dict[str, float]]] = {}
    for folder in folders:
        enc = FrameEncoder.load(folder)
        label = f"{enc.card.version} ({folder})"
        report[label] = {}
        for ws in sets:
            m = _measures(ws, pairwise_distances(_vectors(enc, ws)))
            report[label][ws.name] = m
            print(f"\n{label} on {ws.name}:")
            print(
                f"  Pearson  all {m['pearson_all']:.3f}  disjoint {m['pearson_disjoint']:.3f} ({m['disjoint_pairs']} "
                f"pairs)  study pairs {m['pearson_study_pairs']:.3f} ({m['study_pairs']})"
            )
            print(
                f"  Spearman all {m['spearman_all']:.3f}  disjoint {m['spearman_disjoint']:.3f}  "
                f"study pairs {m['spearman_study_pairs']:.3f}"
            )
            print(
                f"  top-10 mean GT {m['top10_mean_similarity']:.3f} (best {m['best_top10_mean_similarity']:.3f}, "
                f"random {m['random_top10_mean_similarity']:.3f}): share of achievable gain "
                f"{m['share_of_achievable_gain']:.3f}; recall@10 {m['recall_at_10']:.3f} over {m['queries']} queries"
            )
        if any(ws.name.startswith("real") for ws in sets):
            print("  (real frames: every other window is a candidate, overlapping ones included)")
        if enc.signature_spec is not None:
            f_ms, w_ms = _per_frame_ms(enc, sets[-1].data)
            report[label]["per_frame_ms"] = {"frame_vector_and_running_sum": f_ms, "window_vector": w_ms}
            print(f"  per frame (median): frame vector + running sums {f_ms:.2f} ms, window vector {w_ms:.2f} ms")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
