"""ONNX export with a numerical check against PyTorch, and the model card written beside the file."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from satwatch.services.models.modelcard import ModelCard, file_sha256, open_session

OPSET = 17


class ExportMismatchError(RuntimeError):
    """ONNX Runtime and PyTorch disagree on the exported model."""


def export_onnx(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: str | Path,
    input_names: list[str],
    output_names: list[str],
    atol: float = 1e-4,
) -> float:
    """Export ``model`` with a dynamic batch axis, then check ONNX Runtime against PyTorch on ``example``.

    Values agree when ``|onnx - torch| <= atol * max(1, |torch|)``: absolute below 1, relative above, since
    the autoencoder's likelihood map can reach the thousands where float32 rounding alone exceeds 1e-4.
    Returns the largest scaled difference seen; raises ExportMismatchError above ``atol``.
    """
    model = model.eval()
    dynamic = {name: {0: "batch"} for name in input_names + output_names}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter needs no onnxscript and gives a compact, self-contained file.
        torch.onnx.export(
            model,
            example,
            buf,  # type: ignore[arg-type]
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    Path(path).write_bytes(buf.getvalue())
    with torch.no_grad():
        expected = model(*example)
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    session = open_session(path, threads=2)
    got = session.run(output_names, {n: t.numpy() for n, t in zip(input_names, example, strict=True)})
    worst = 0.0
    for name, e, g in zip(output_names, expected, got, strict=True):
        ref = e.numpy()
        diff = float(np.max(np.abs(ref - g) / np.maximum(1.0, np.abs(ref)))) if e.numel() else 0.0
        worst = max(worst, diff)
        if not diff <= atol:
            raise ExportMismatchError(f"{path}: output {name!r} differs from PyTorch by {diff:.3g} > {atol}")
    return worst


def finish_card(card: ModelCard, onnx_path: str | Path, card_path: str | Path) -> ModelCard:
    """Stamp the ONNX file's name and sha256 into the card and write it."""
    p = Path(onnx_path)
    card = card.model_copy(update={"file": p.name, "sha256": file_sha256(p)})
    card.save(card_path)
    return card
