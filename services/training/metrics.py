"""Evaluation measures for both models (NumPy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two 1-D samples."""
    a = np.asarray(a, dtype=np.float64) - np.mean(a)
    b = np.asarray(b, dtype=np.float64) - np.mean(b)
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    # ties share their mean rank
    sx = x[order]
    start = 0
    for i in range(1, len(x) + 1):
        if i == len(x) or sx[i] != sx[start]:
            if i - start > 1:
                ranks[order[start:i]] = (start + i - 1) / 2.0
            start = i
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (Pearson of mid-ranks)."""
    return pearson(_ranks(np.asarray(a)), _ranks(np.asarray(b)))


def pairwise_distances(emb: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix (M, M) of row vectors."""
    e = np.asarray(emb, dtype=np.float64)
    sq = (e * e).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * e @ e.T, 0.0)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)


@dataclass
class RetrievalReport:
    pearson: float
    spearman: float
    pairs: int
    topk_mean_similarity: float
    best_topk_mean_similarity: float
    topk_ratio: float
    recall_at_k: float
    queries: int
    queries_with_similar: int
    topk_mean_similarity_where_similar: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def retrieval_report(
    sim: np.ndarray, dist: np.ndarray, k: int = 10, allowed: np.ndarray | None = None, similar: float = 0.8
) -> RetrievalReport:
    """Compare embedding distances with ground-truth similarities of the same windows.

    ``allowed[i, j]`` says whether j may be returned for query i (e.g. not overlapping in time); the
    correlations use every pair i < j that is allowed. "Where similar" restricts to queries whose best
    possible top-k has mean ground-truth similarity at least ``similar``.
    """
    m = sim.shape[0]
    ok = np.ones((m, m), dtype=bool) if allowed is None else allowed.copy()
    np.fill_diagonal(ok, False)
    iu = np.triu_indices(m, 1)
    sel = ok[iu]
    s_pairs, d_pairs = sim[iu][sel], dist[iu][sel]
    got, best, recall, good_got = [], [], [], []
    for i in range(m):
        cand = np.flatnonzero(ok[i])
        if len(cand) < k:
            continue
        by_emb = cand[np.argsort(dist[i, cand], kind="stable")[:k]]
        by_gt = cand[np.argsort(-sim[i, cand], kind="stable")[:k]]
        g, b = float(sim[i, by_emb].mean()), float(sim[i, by_gt].mean())
        got.append(g)
        best.append(b)
        recall.append(len(set(by_emb.tolist()) & set(by_gt.tolist())) / k)
        if b >= similar:
            good_got.append(g)
    got_a, best_a = np.array(got), np.array(best)
    return RetrievalReport(
        pearson=pearson(s_pairs, d_pairs),
        spearman=spearman(s_pairs, d_pairs),
        pairs=int(len(s_pairs)),
        topk_mean_similarity=float(got_a.mean()) if got else float("nan"),
        best_topk_mean_similarity=float(best_a.mean()) if got else float("nan"),
        topk_ratio=float(got_a.mean() / best_a.mean()) if got else float("nan"),
        recall_at_k=float(np.mean(recall)) if recall else float("nan"),
        queries=len(got),
        queries_with_similar=len(good_got),
        topk_mean_similarity_where_similar=float(np.mean(good_got)) if good_got else float("nan"),
    )


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outscores a negative; ties count half)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = _ranks(s) + 1.0
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Average precision: mean of the precision at the rank of each positive (scores sorted descending)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def window_mean_cdfs(cdfs: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Per window, the mean over its frames of the frames' cell CDFs: (M, C, cells, B) from (N, C, cells, B)."""
    return np.stack([cdfs[w].mean(axis=0) for w in windows])


def reference_distances(cdfs: np.ndarray, windows: np.ndarray) -> dict[str, np.ndarray]:
    """Fixed (unlearned, uncompressed) distances between windows, from their frames' cell CDFs.

    ``cdfs`` is (N, C, cells, B) per frame, ``windows`` (M, L) frame indices. The rows bound what an encoder
    of this design can reach. Its window embedding is a mean of frame embeddings compared by Euclidean
    distance, so with a linear body it is at best a reweighted L2 distance between window means of frame
    features: the window-mean CDFs, or the window means of the frames' square-root histograms (the design's
    linear ceiling). The square roots of the window-mean histograms are not a mean of frame features, and
    the KS statistic on the mean CDFs (the metric itself with the frames' order forgotten) is not Euclidean:
    no encoder of this design is guaranteed to reach those two.
    """
    mean_cdfs = window_mean_cdfs(cdfs, windows)
    m = len(mean_cdfs)
    flat = mean_cdfs.reshape(m, -1).astype(np.float64)
    hist = np.diff(mean_cdfs, axis=-1, prepend=0.0, append=1.0).clip(min=0.0)
    frame_roots = np.sqrt(np.diff(cdfs, axis=-1, prepend=0.0, append=1.0).clip(min=0.0)).astype(np.float32)
    mean_roots = np.stack([frame_roots[w].mean(axis=0) for w in windows]).reshape(m, -1)
    ks = np.zeros((m, m))
    for i in range(m):
        ks[i] = np.abs(mean_cdfs[i : i + 1] - mean_cdfs).max(axis=-1).mean(axis=(1, 2))
    return {
        "KS statistic on window-mean CDFs (not Euclidean)": ks,
        "L2 between square roots of window-mean histograms (not a mean of frame features)": pairwise_distances(
            np.sqrt(hist).reshape(m, -1)
        ),
        "L2 between window means of frame square-root histograms (linear ceiling)": pairwise_distances(mean_roots),
        "L2 between window-mean CDFs": pairwise_distances(flat),
    }
