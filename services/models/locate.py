"""Which folder each model is loaded from when a model folder is named.

A researcher's ``satwatch train autoencoder --out`` folder holds only the autoencoder and its card (and an
encoder run only the encoder). Pointing ``--model-dir`` (or ``detector.model_dir``) at it means "use this
model": the other one then comes from the shipped models, and the log says so, rather than the load failing
for want of the other model's card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from satwatch.services.models.anomaly import AUTOENCODER_CARD
from satwatch.services.models.embedding import ENCODER_CARD
from satwatch.services.models.modelcard import packaged_model_dir

log = logging.getLogger(__name__)
#: (folder, model) fallbacks already logged: a command resolving the same folder twice says it once.
_told: set[tuple[Path, str]] = set()


@dataclass(frozen=True)
class ModelDirs:
    """The folder each model loads from; None is the shipped models (what ``load(None)`` reads)."""

    encoder: Path | None
    autoencoder: Path | None


def resolve_model_dirs(model_dir: str | Path | None) -> ModelDirs:
    """Folders for the encoder and the autoencoder given one model folder (None: both shipped).

    A folder holding one model's card serves that model; the other falls back to the shipped one, logged at
    INFO. A folder holding neither card is an error that says what it should hold.
    """
    if model_dir is None:
        return ModelDirs(None, None)
    folder = Path(model_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    has_encoder, has_autoencoder = (folder / ENCODER_CARD).is_file(), (folder / AUTOENCODER_CARD).is_file()
    if not (has_encoder or has_autoencoder):
        raise FileNotFoundError(
            f"model folder {folder} holds neither {ENCODER_CARD} nor {AUTOENCODER_CARD}: point it at a "
            "'satwatch train ... --out' folder or a copy of onnx_models/"
        )
    for name, present in (("encoder", has_encoder), ("autoencoder", has_autoencoder)):
        if not present and (folder, name) not in _told:
            _told.add((folder, name))
            shipped = packaged_model_dir()
            log.info("model folder %s has no %s: using the shipped %s from %s", folder, name, name, shipped)
    return ModelDirs(folder if has_encoder else None, folder if has_autoencoder else None)
