"""Which folder each model is loaded from when a model folder is named.

A researcher's ``satwatch train autoencoder --out`` folder holds only the autoencoder and its card (and an
encoder run only the encoder). Pointing ``--model-dir`` (or ``detector.model_dir``) at it means "use this
model": the other one then comes from the shipped models, and the log says so, rather than the load failing
for want of the other model's card.

With no folder named, a satellite profile names its own models (``encoder``/``autoencoder``), as a satellite's
configuration should: the built-in COMS-1 profile serves real imagery with the autoencoder trained on it and
encoder v3 (a count sketch that tracks the metric on real-texture windows). A profile naming none gets the
shipped root set. ``index build``, ``search`` and ``nowcast --index`` follow the same rule for the encoder.

Wherever a model folder is named (``--model-dir``, config, a profile), the name of a shipped set works from
any directory and in an installed package: ``onnx_models`` (the root set, v1.6 for the procedural simulator),
``autoencoder-v2``, ``encoder-v2.2``, ``encoder-v3``; a folder that exists by that name wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from satwatch.services.frames.profiles import SatelliteProfile
from satwatch.services.models.anomaly import AUTOENCODER_CARD
from satwatch.services.models.embedding import ENCODER_CARD
from satwatch.services.models.modelcard import load_card, packaged_model_dir, shipped_or_folder

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
    folder = shipped_or_folder(model_dir)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"model folder {folder} does not exist (shipped sets, usable by name: {', '.join(shipped_sets())})"
        )
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


def shipped_sets() -> list[str]:
    """Names of the shipped model sets: ``onnx_models`` (the root) and its sub-folders holding a card."""
    root = packaged_model_dir()
    subs = [p.name for p in root.iterdir() if (p / ENCODER_CARD).is_file() or (p / AUTOENCODER_CARD).is_file()]
    return [root.name, *sorted(subs)]


def named_model_dir(name: str, card: str) -> Path:
    """A profile's model entry as a folder: an existing folder, else a shipped one by name (``autoencoder-v2``)."""
    folder = shipped_or_folder(name)
    if (folder / card).is_file():
        return folder
    holding = [n for n in shipped_sets() if (shipped_or_folder(n) / card).is_file()]
    raise FileNotFoundError(f"no model folder {name!r} holding {card}: name a folder, or one of the shipped {holding}")


def profile_model_dirs(profile: SatelliteProfile) -> ModelDirs:
    """The models a profile names (each None: the shipped root one)."""
    try:
        return ModelDirs(
            named_model_dir(profile.encoder, ENCODER_CARD) if profile.encoder else None,
            named_model_dir(profile.autoencoder, AUTOENCODER_CARD) if profile.autoencoder else None,
        )
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"satellite profile {profile.name}: {exc}") from None


def shipped_profile() -> str | None:
    """The profile the shipped root encoder was trained for (what a detector with no profile given serves)."""
    return load_card(packaged_model_dir() / ENCODER_CARD).profile
