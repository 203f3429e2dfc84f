"""Frame and window embeddings at run time: the ONNX encoder shipped in ``onnx_models/`` behind a small API.

Every way a new frame costs O(1): the detector turns each frame once into a per-frame vector
(``encode``/``encode_signatures``) and keeps running sums of those; ``window_input`` is the window's input
from its per-frame vectors and ``embed_windows`` maps it to the vector the index holds. The card's
``window_embedding`` says which design a model is: ``mean_of_frames`` (v1: the per-frame vector is the
frame's embedding, the input is their mean, the map is the identity), ``map_of_mean`` (v2.0: the per-frame
vector is the frame's per-cell histograms, the graph maps their mean) or ``map_of_part_means`` (v2.1: the
graph maps the mean histograms of the window's consecutive parts, so it sees the order of the frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satwatch.services.metric.groundtruth import FrameSignature, GridSpec, cdf_from_signature
from satwatch.services.models.modelcard import (
    ModelCard,
    load_card,
    normalise,
    open_session,
    packaged_model_dir,
    shipped_or_folder,
    verify,
)

ENCODER_FILE = "encoder.onnx"
ENCODER_CARD = "encoder.card.json"


class FrameEncoder:
    """Maps (N,4,H,W) uint8 frames to (N, dim) float32 embeddings with the card's normalisation."""

    def __init__(self, card: ModelCard, session: Any) -> None:
        self.card = card
        self._session = session
        self._input = card.input.name
        self._output = card.outputs[0].name
        last = card.outputs[0].shape[-1]
        if not isinstance(last, int):
            raise ValueError(f"encoder card {card.name!r} has no fixed embedding size: {card.outputs[0].shape}")
        self.dim: int = last
        #: Length of the per-frame vector a window averages (``dim`` for v1, C*(B+1)*n*n for v2).
        self.feature_dim: int = last
        #: Consecutive parts of the window whose means the graph reads (1 but for ``map_of_part_means``).
        self.parts: int = 1
        self._maps_windows = card.window_embedding in ("map_of_mean", "map_of_part_means")
        if self._maps_windows:
            shape = card.input.shape[1:]
            if not all(isinstance(d, int) for d in shape):
                raise ValueError(f"encoder card {card.name!r} has no fixed input shape: {card.input.shape}")
            self._in_shape = tuple(int(d) for d in shape)
            if card.window_embedding == "map_of_part_means":
                self.parts = self._in_shape[0]
            self.feature_dim = int(np.prod(self._in_shape)) // self.parts

    @classmethod
    def load(cls, model_dir: str | Path | None = None, threads: int = 1) -> FrameEncoder:
        """Load ``encoder.onnx`` + ``encoder.card.json`` (default: the packaged models) and verify them."""
        folder = shipped_or_folder(model_dir) if model_dir is not None else packaged_model_dir()
        card = load_card(folder / ENCODER_CARD)
        if card.kind != "encoder":
            raise ValueError(f"{folder / ENCODER_CARD} describes a {card.kind}, not an encoder")
        verify(card, folder / card.file)
        return cls(card, open_session(folder / card.file, threads))

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Per-frame vectors a window averages: (N,4,H,W) or (4,H,W) uint8 -> (N, feature_dim) float32."""
        x = normalise(np.asarray(frames), self.card.normalisation)
        if self._maps_windows:
            return x.reshape(len(x), -1)
        out = self._session.run([self._output], {self._input: x})[0]
        return np.asarray(out, dtype=np.float32)

    @property
    def signature_spec(self) -> GridSpec | None:
        """The ground-truth grid whose CDFs this encoder reads (``front_end = "grid_cdf"``), else None."""
        norm = self.card.normalisation
        if norm.front_end not in ("grid_cdf", "grid_hist"):
            return None
        return GridSpec(n=norm.grid, bins=norm.bins, mode="general")

    def encode_signatures(self, signatures: Sequence[FrameSignature]) -> np.ndarray:
        """:meth:`encode` from the frames' ground-truth signatures (signature-fed encoders only)."""
        if self.signature_spec is None:
            raise ValueError(f"encoder {self.card.name!r} reads pixels, not ground-truth signatures")
        if self._maps_windows:
            return np.stack([hist_from_signature(s).reshape(-1) for s in signatures])
        x = np.stack([cdf_from_signature(s) for s in signatures])
        return np.asarray(self._session.run([self._output], {self._input: x})[0], dtype=np.float32)

    def window_input(self, vectors: np.ndarray) -> np.ndarray:
        """A window's input from its per-frame vectors (L, feature_dim) in time order: their mean, or the
        means of its ``parts`` consecutive parts concatenated, (parts * feature_dim,) float64."""
        return part_means(vectors, self.parts)

    def embed_windows(self, means: np.ndarray) -> np.ndarray:
        """Index vectors of windows from their inputs (``window_input``): (M, parts * feature_dim) -> (M, dim)."""
        m = np.asarray(means, dtype=np.float32)
        if not self._maps_windows:
            return m.reshape(-1, self.dim)
        x = np.ascontiguousarray(m.reshape(-1, *self._in_shape))
        return np.asarray(self._session.run([self._output], {self._input: x})[0], dtype=np.float32)

    def encode_window(self, frames: np.ndarray) -> np.ndarray:
        """A window's embedding from its frames, shape (dim,)."""
        return self.embed_windows(self.window_input(self.encode(frames))[None])[0]


def hist_from_signature(sig: FrameSignature) -> np.ndarray:
    """Per channel and cell, the fraction of pixels in each of the B+1 bins: (C*(B+1), n, n) float32.

    Channel-major then bin, like ``cdf_from_signature``; exact (counts over the cell's pixel count).
    """
    hist = sig.histograms() / sig.cell_pixels.astype(np.float64)[None, :, None]  # (C, n*n, B+1)
    n = sig.spec.n
    return np.ascontiguousarray(hist.transpose(0, 2, 1), dtype=np.float32).reshape(-1, n, n)


def part_bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """Frame ranges [a, b) of a window's ``parts`` consecutive parts, oldest first, for ``length`` frames.

    Parts are as equal as the length allows (20 frames, 4 parts: 5 each); a window shorter than ``parts``
    repeats frames rather than leave a part empty, so part-filled windows still map.
    """
    if length < 1 or parts < 1:
        raise ValueError("a window needs at least one frame and one part")
    out = []
    for j in range(parts):
        a = (j * length) // parts
        out.append((min(a, length - 1), max((j + 1) * length // parts, a + 1)))
    return out


def part_means(vectors: np.ndarray, parts: int) -> np.ndarray:
    """The window's input from its per-frame vectors (L, F) in time order: the means of its ``parts``
    consecutive parts, concatenated (parts * F,) float64; ``parts`` = 1 is the plain window mean."""
    v = np.asarray(vectors, dtype=np.float64)
    return np.concatenate([v[a:b].mean(axis=0) for a, b in part_bounds(len(v), parts)])


def window_embedding(frame_embeddings: np.ndarray) -> np.ndarray:
    """Mean of per-frame vectors (K, d) -> (d,) float32 (for v2 encoders pass it to ``embed_windows``)."""
    return np.asarray(frame_embeddings, dtype=np.float32).mean(axis=0)
