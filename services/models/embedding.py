"""Frame embeddings at run time: the ONNX encoder shipped in ``onnx_models/`` behind a small API.

A window's embedding is the mean of its frames' embeddings, so the detector encodes each new frame once
and keeps the per-frame vectors with the window.
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

    @classmethod
    def load(cls, model_dir: str | Path | None = None, threads: int = 1) -> FrameEncoder:
        """Load ``encoder.onnx`` + ``encoder.card.json`` (default: the packaged models) and verify them."""
        folder = Path(model_dir) if model_dir is not None else packaged_model_dir()
        card = load_card(folder / ENCODER_CARD)
        if card.kind != "encoder":
            raise ValueError(f"{folder / ENCODER_CARD} describes a {card.kind}, not an encoder")
        verify(card, folder / card.file)
        return cls(card, open_session(folder / card.file, threads))

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Embed frames: (N,4,H,W) or (4,H,W) uint8 at any size -> (N, dim) float32."""
        x = normalise(np.asarray(frames), self.card.normalisation)
        out = self._session.run([self._output], {self._input: x})[0]
        return np.asarray(out, dtype=np.float32)

    @property
    def signature_spec(self) -> GridSpec | None:
        """The ground-truth grid whose CDFs this encoder reads (``front_end = "grid_cdf"``), else None."""
        norm = self.card.normalisation
        if norm.front_end != "grid_cdf":
            return None
        return GridSpec(n=norm.grid, bins=norm.bins, mode="general")

    def encode_signatures(self, signatures: Sequence[FrameSignature]) -> np.ndarray:
        """Embed frames from their ground-truth signatures (grid_cdf encoders only) -> (N, dim) float32."""
        if self.signature_spec is None:
            raise ValueError(f"encoder {self.card.name!r} reads pixels, not ground-truth signatures")
        x = np.stack([cdf_from_signature(s) for s in signatures])
        return np.asarray(self._session.run([self._output], {self._input: x})[0], dtype=np.float32)

    def encode_window(self, frames: np.ndarray) -> np.ndarray:
        """A window's embedding: the mean of its frames' embeddings, shape (dim,)."""
        return self.encode(frames).mean(axis=0)


def window_embedding(frame_embeddings: np.ndarray) -> np.ndarray:
    """Mean of per-frame embeddings (K, dim) -> (dim,) float32, the window's vector."""
    return np.asarray(frame_embeddings, dtype=np.float32).mean(axis=0)
