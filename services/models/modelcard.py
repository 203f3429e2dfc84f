"""Model cards: the JSON description shipped beside every ONNX model.

A card states what the model expects (input tensor, how uint8 frames become that tensor, the time
conditioning of the anomaly model), what it returns, what it was trained on, how well it did and the
calibrated thresholds. ``verify`` checks that an ONNX file is the one the card describes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field, model_validator

from satwatch.services.frames.resample import box_moments
from satwatch.services.models.graph import merge_sibling_convs


class ModelCardError(ValueError):
    """The card is unreadable or does not match its ONNX file."""


class TensorSpec(BaseModel):
    """One ONNX input or output: name, shape (a string is a symbolic axis such as "batch") and dtype."""

    name: str
    shape: list[int | str]
    dtype: str = "float32"


def _mean_only() -> list[Literal["mean", "std"]]:
    return ["mean"]


class Normalisation(BaseModel):
    """How a (C,H,W) uint8 frame at the shrunk size becomes the model's input.

    The planes are resized to ``height`` x ``width`` with ``resample`` (skipped when already that size),
    then each channel c becomes ``pixel * scale[c] + offset[c]`` as float32. With ``features`` ["mean",
    "std"] (box resampling only) the input also carries, after the C mean planes, C planes of the pixel
    standard deviation inside each output cell, times ``std_scale``: sub-cell texture such as scan-line
    striping survives the downsampling that way.
    """

    channels: list[str]
    height: int
    width: int
    resample: Literal["box", "bilinear"] = "box"
    scale: list[float]
    offset: list[float]
    features: list[Literal["mean", "std"]] = Field(default_factory=_mean_only)
    std_scale: float = 1.0 / 255.0
    front_end: Literal["pixels", "grid_cdf", "grid_hist"] = Field(
        "pixels",
        description="pixels: the planes as above; grid_cdf: each channel's per-cell empirical CDF at the "
        "ground-truth metric's general-mode grid and bin edges, (N, C*bins, grid, grid), computed outside the graph; "
        "grid_hist: each channel's per-cell normalised histogram over the metric's bins + 1 values, "
        "(N, C*(bins+1), grid, grid), computed outside the graph",
    )
    grid: int = 24
    bins: int = 20

    @model_validator(mode="after")
    def _spread_needs_box(self) -> Normalisation:
        if "std" in self.features and self.resample != "box":
            raise ValueError("the 'std' feature is the pixel spread inside each box cell: it needs resample 'box'")
        return self


class Conditioning(BaseModel):
    """Side input computed from the frame's UTC time (the anomaly model's time-of-day/season features)."""

    input: TensorSpec
    features: list[str] = Field(description="feature order, e.g. sin/cos of time of day and day of year")
    description: str = ""


class Scoring(BaseModel):
    """How the anomaly score is aggregated from the per-pixel error map (and a frame-level output).

    ``top_fraction_mean``: the mean of the largest ``fraction`` of the error map. ``with_consistency``:
    that pixel score standardised, ``(pixel - pixel_center) / pixel_scale``, plus
    ``max(0, consistency - consistency_gate)`` where ``consistency`` is the model's frame-level output named
    ``consistency_output`` (already in units of its own spread); below the gate it leaves the score alone.
    With ``lines_output`` set, ``max(0, lines - lines_gate)`` of that frame-level output (the scan-line
    check, also in units of its spread) is added the same way. With ``texture_output`` set (the patch-texture
    check, v2), the weather term is the larger of the standardised texture output, ``(texture -
    texture_center) / texture_scale``, and what the standardised pixel score has beyond ``pixel_gate``;
    where the texture term is the larger, the frame's heat map is ``texture_map_output`` (each patch's
    distance from normal, standardised the same way) instead of the reconstruction error, so the alert
    points at the unusual patches.

    With ``novelty_frames`` > 0 (v2.1, temporal novelty) the weather term is also the larger of itself and the
    standardised novelty, ``(novelty - novelty_center) / novelty_scale``: the mean of the ``novelty_top``
    largest values of the frame's patch-distance map less, patch by patch, the largest distance the same patch
    had in the stream's previous ``novelty_frames`` frames within ``novelty_span_s`` seconds. A cell that
    appears where the previous frames were ordinary stands out; an unusual structure that persists does not.
    A frame with no previous frame in that span (a stream's first, or after a gap) has no novelty term.

    ``domain_error_max`` is the largest typical (median) per-pixel error any normal calibration frame reached
    (:func:`satwatch.services.models.anomaly.typical_error`). Weather and faults are local, so they barely move
    a frame's median error; imagery unlike what the model learned (real frames under a model trained on the
    procedural simulator) lifts it everywhere, tens of times over. Cards without it skip that check.
    """

    aggregate: Literal["top_fraction_mean", "with_consistency"] = "top_fraction_mean"
    fraction: float = 0.01
    error_output: str = "error"
    consistency_output: str | None = None
    pixel_center: float = 0.0
    pixel_scale: float = 1.0
    consistency_gate: float = 0.0
    lines_output: str | None = None
    lines_gate: float = 0.0
    texture_output: str | None = None
    texture_map_output: str | None = None
    texture_center: float = 0.0
    texture_scale: float = 1.0
    pixel_gate: float = 0.0
    novelty_frames: int = 0
    novelty_span_s: float = 0.0
    novelty_top: int = 4
    novelty_center: float = 0.0
    novelty_scale: float = 1.0
    domain_error_max: float | None = None


class ModelCard(BaseModel):
    """Everything a runtime needs to know about one exported model."""

    name: str
    kind: Literal["encoder", "autoencoder"]
    version: str
    file: str
    sha256: str
    input: TensorSpec
    outputs: list[TensorSpec]
    normalisation: Normalisation
    conditioning: Conditioning | None = None
    scoring: Scoring | None = None
    window_embedding: Literal["mean_of_frames", "map_of_mean", "map_of_part_means"] = Field(
        "mean_of_frames",
        description="mean_of_frames (v1): the graph embeds frames and a window's vector is the mean of its "
        "frames'; map_of_mean (v2): per-frame features (front_end) are averaged over the window and the graph "
        "maps that mean to the window's vector; map_of_part_means (v2.1): they are averaged over each of the "
        "window's consecutive parts (the input's second axis) and the graph maps those means",
    )
    profile: str | None = Field(
        None, description="satellite profile the model was trained for (its channels are normalisation.channels)"
    )
    training_data: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def save(self, path: str | Path) -> None:
        """Write the card as indented JSON."""
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a model card JSON file."""
    p = Path(path)
    if not p.is_file():
        raise ModelCardError(f"model card {p} does not exist")
    try:
        return ModelCard.model_validate(json.loads(p.read_text()))
    except (json.JSONDecodeError, ValueError) as exc:
        raise ModelCardError(f"model card {p} is not valid: {exc}") from exc


#: onnxruntime's tensor type names, as numpy dtype names (the cards' vocabulary).
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


def _specs(values: Any) -> list[TensorSpec]:
    """Tensor specs of onnxruntime NodeArgs (a symbolic dimension keeps its name; an unnamed unknown one is 0)."""
    specs = []
    for v in values:
        shape: list[int | str] = [d if isinstance(d, str) else int(d or 0) for d in v.shape]
        specs.append(TensorSpec(name=v.name, shape=shape, dtype=_ORT_DTYPES.get(v.type, v.type)))
    return specs


def _describe(specs: list[TensorSpec]) -> str:
    return ", ".join(f"{s.name}{s.shape}:{s.dtype}" for s in specs) or "(none)"


def verify(card: ModelCard, onnx_path: str | Path) -> None:
    """Check the file's sha256 and its graph inputs/outputs against the card; raise ModelCardError if not."""
    p = Path(onnx_path)
    if not p.is_file():
        raise ModelCardError(f"ONNX file {p} named by model card {card.name!r} does not exist")
    digest = file_sha256(p)
    if digest != card.sha256:
        raise ModelCardError(
            f"{p.name}: sha256 {digest} does not match model card {card.name!r} ({card.sha256}); "
            "the file was modified or belongs to another card"
        )
    # onnxruntime (a runtime dependency) reads the graph's signature; the ``onnx`` package is for training only.
    try:
        session = open_session(p)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelCardError(f"{p.name}: onnxruntime cannot load it: {exc}") from exc
    actual_in = _specs(session.get_inputs())
    expected_in = [card.input] + ([card.conditioning.input] if card.conditioning else [])
    if actual_in != expected_in:
        raise ModelCardError(
            f"{p.name}: ONNX inputs {_describe(actual_in)} differ from model card {card.name!r} "
            f"inputs {_describe(expected_in)}"
        )
    actual_out = _specs(session.get_outputs())
    if actual_out != card.outputs:
        raise ModelCardError(
            f"{p.name}: ONNX outputs {_describe(actual_out)} differ from model card {card.name!r} "
            f"outputs {_describe(card.outputs)}"
        )
    if card.scoring is not None:
        sc = card.scoring
        named = [sc.error_output, sc.consistency_output, sc.lines_output]
        missing = [n for n in named if n and n not in {o.name for o in card.outputs}]
        if missing:
            raise ModelCardError(
                f"model card {card.name!r}: its scoring uses outputs {missing} that the model does not have "
                f"({_describe(card.outputs)}); fix the card's 'scoring' section or re-export the model"
            )


def normalise(frames: np.ndarray, norm: Normalisation) -> np.ndarray:
    """Turn (N,C,H,W) or (C,H,W) uint8 frames into the model's float32 input as the card says."""
    batch = frames[None] if frames.ndim == 3 else frames
    if batch.ndim != 4 or batch.shape[1] != len(norm.channels):
        raise ValueError(
            f"frames of shape {frames.shape} do not match the model's {len(norm.channels)} channels "
            f"{norm.channels}; expected (N,{len(norm.channels)},H,W) uint8"
        )
    if norm.front_end == "grid_cdf":
        from satwatch.services.metric.groundtruth import GridSpec, cdf_features

        spec = GridSpec(n=norm.grid, bins=norm.bins, mode="general")
        return np.stack([cdf_features(f, spec) for f in batch.astype(np.uint8, copy=False)])
    if norm.front_end == "grid_hist":
        from satwatch.services.metric.groundtruth import GridSpec, frame_signature
        from satwatch.services.models.embedding import hist_from_signature

        spec = GridSpec(n=norm.grid, bins=norm.bins, mode="general")
        return np.stack([hist_from_signature(frame_signature(f, spec)) for f in batch.astype(np.uint8, copy=False)])
    _, _, h, w = batch.shape
    want_std = "std" in norm.features
    if (h, w) == (norm.height, norm.width):
        mean = batch.astype(np.float32)
        spread = np.zeros_like(mean) if want_std else None
    elif norm.resample == "box":
        mean, spread = box_moments(batch.astype(np.uint8, copy=False), norm.height, norm.width, spread=want_std)
    else:
        mean = _bilinear(batch, norm.height, norm.width)
        spread = None
    scale = np.asarray(norm.scale, dtype=np.float32)[None, :, None, None]
    offset = np.asarray(norm.offset, dtype=np.float32)[None, :, None, None]
    parts = [mean * scale + offset]
    if spread is not None:
        parts.append(spread * np.float32(norm.std_scale))
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def _bilinear(batch: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of every plane (Pillow, float mode so the values stay unrounded)."""
    n, c = batch.shape[:2]
    out = np.empty((n, c, height, width), dtype=np.float32)
    for i in range(n):
        for j in range(c):
            plane = Image.fromarray(batch[i, j].astype(np.float32), mode="F")
            out[i, j] = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
    return out


def open_session(path: str | Path, threads: int = 1, fuse: bool = True) -> Any:
    """An onnxruntime CPU session with a small thread pool (the detector runs beside other work).

    ``fuse``: apply the load-time rewrites of :mod:`satwatch.services.models.graph` (same outputs, less work).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = merge_sibling_convs(path) if fuse else None  # the same outputs, bit for bit, for less work
    return ort.InferenceSession(
        model if model is not None else str(path), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def packaged_model_dir() -> Path:
    """The folder of the models shipped inside the package (satwatch.onnx_models)."""
    import satwatch.onnx_models

    return Path(satwatch.onnx_models.__file__).parent


def shipped_or_folder(name: str | Path) -> Path:
    """A folder by that path if one exists, else the shipped set of that name (``onnx_models`` is the root set,
    ``autoencoder-v2`` one inside it), else the path as given: shipped names work from any directory."""
    folder = Path(name)
    if folder.is_dir() or folder.is_absolute():
        return folder
    root = packaged_model_dir()
    if str(name) == root.name:
        return root
    return root / folder if (root / folder).is_dir() else folder
