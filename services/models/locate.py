"""Which folder each model is loaded from when a model folder is named.

A researcher's ``satwatch train autoencoder --out`` folder holds only the autoencoder and its card (and an
encoder run only the encoder). Pointing ``--model-dir`` (or ``detector.model_dir``) at it means "use this
model": the other one then comes from the shipped models, and the log says so, rather than the load failing
for want of the other model's card.

With no folder named, a satellite profile names its own models (``encoder``/``autoencoder``: a folder, or the
name of a shipped one such as ``autoencoder-v2``), as DESIGN.md asks of profiles: the built-in COMS-1 profile
serves real imagery with the autoencoder trained on it. A profile naming none gets the shipped root set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from satwatch.services.frames.profiles import SatelliteProfile
from satwatch.services.models.anomaly import AUTOENCODER_CARD
from satwatch.services.models.embedding import ENCODER_CARD
from satwatch.services.models.modelcard import load_card, packaged_model_dir

log = logging.getLogger(__name__)
#: (folder, model) fallbacks already logged: a command resolving the same folder twice says it once.
_told: set[tuple[Path, str]] = set()


@dataclass(frozen=True)
class ModelDirs:
    """The folder each model loads from; None is the shipped models (what ``load(None)`` reads)."""

    encoder: Path | None
    autoencoder: Path | None


def resolve_model_dirs(model_dir: str | Path | None, profile: SatelliteProfile | None = None) -> ModelDirs:
    """Folders for the encoder and the autoencoder given one model folder (None: the profile's, else shipped).

    A folder holding one model's card serves that model; the other falls back to the shipped one, logged at
    INFO. A folder holding neither card is an error that says what it should hold. A named folder always wins
    over the profile's models.
    """
    if model_dir is None:
        return profile_model_dirs(profile) if profile is not None else ModelDirs(None, None)
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


def named_model_dir(name: str, card: str) -> Path:
    """A profile's model entry as a folder: an existing folder, else a shipped one by name (``autoencoder-v2``)."""
    for folder in (Path(name), packaged_model_dir() / name):
        if (folder / card).is_file():
            return folder
    shipped = sorted(p.name for p in packaged_model_dir().iterdir() if (p / card).is_file())
    raise FileNotFoundError(
        f"no model folder {name!r} holding {card}: name a folder, or one of the shipped {shipped or ['(none)']}"
    )


def profile_model_dirs(profile: SatelliteProfile) -> ModelDirs:
    """The models a profile names (each None: the shipped root one)."""
    return ModelDirs(
        named_model_dir(profile.encoder, ENCODER_CARD) if profile.encoder else None,
        named_model_dir(profile.autoencoder, AUTOENCODER_CARD) if profile.autoencoder else None,
    )


def shipped_profile() -> str | None:
    """The profile the shipped root encoder was trained for (what a detector with no profile given serves)."""
    return load_card(packaged_model_dir() / ENCODER_CARD).profile
