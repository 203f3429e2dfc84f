"""Which folder each model is loaded from when a model folder is named.

A researcher's ``satwatch train autoencoder --out`` folder holds only the autoencoder and its card (and an
encoder run only the encoder). Pointing ``--model-dir`` (or ``detector.model_dir``) at it means "use this
model": the other one then comes from the shipped models, and the log says so, rather than the load failing
for want of the other model's card.

With no folder named, a satellite profile names its own models (``encoder``/``autoencoder``), as a satellite's
configuration should: the built-in COMS-1 profile serves real imagery with the autoencoder trained on it and
encoder v3 (a count sketch that tracks the metric on real-texture windows). A profile naming none gets the
shipped root set.

An archive's frames are served by :func:`archive_models`, the one rule of ``evaluate``, ``index build``,
``search`` and ``nowcast --index``: a named folder; else, for a procedural simulated archive (its
``simulation.json`` says so), the set trained on that simulator (``onnx_models``, what ``satwatch simulate``
tells the detector to serve); else the archive's satellite profile's models. An index built and a search of it
so pick the same encoder, the one the detector serving those frames uses.

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


@dataclass(frozen=True)
class ModelChoice:
    """The models chosen to serve an archive's frames and why (for the command's output)."""

    dirs: ModelDirs
    why: str

    def describe(self, model: str, version: str) -> str:
        """One line: ``encoder v3.0.0 from FOLDER (why)``; ``model`` is ``encoder`` or ``autoencoder``."""
        folder = getattr(self.dirs, model) or packaged_model_dir()
        return f"{model} v{version} from {folder} ({self.why})"


def archive_models(
    archive: str | Path | None,
    profile: SatelliteProfile | None,
    model_dir: str | Path | None = None,
    configured: str | Path | None = None,
    configured_why: str = "detector.model_dir of the config",
) -> ModelChoice:
    """The models that serve an archive's frames: one rule for every command reading an archive.

    ``model_dir`` (``--model-dir``) wins, then ``configured`` (the detector's folder for the profile,
    ``configured_why`` saying where it was set: ``router.archive_route``); else a procedural
    simulated archive (:func:`~satwatch.services.simulator.scene.archive_scene`) gets the set trained on that
    simulator (``onnx_models``: COMS-1's own set is for real imagery, and the simulator tells the detector to
    serve this one); else ``profile``'s models (COMS-1: encoder-v3, autoencoder-v2); no profile: the shipped
    root set. ``archive`` None: no archive (the simulated evaluation period: ``profile`` None, the root set).
    """
    from satwatch.services.simulator.scene import PROCEDURAL_MODELS, archive_scene

    if model_dir:
        return ModelChoice(resolve_model_dirs(model_dir, profile), "--model-dir")
    if configured:
        return ModelChoice(resolve_model_dirs(configured, profile), configured_why)
    if archive is not None and archive_scene(archive) == "procedural":
        why = "no --model-dir: a procedural simulated archive, served by the set trained on that simulator"
        return ModelChoice(resolve_model_dirs(PROCEDURAL_MODELS), why)
    if profile is not None and (profile.encoder or profile.autoencoder):
        return ModelChoice(resolve_model_dirs(None, profile), f"no --model-dir: the {profile.name} profile's set")
    return ModelChoice(resolve_model_dirs(None), "no --model-dir: the shipped root set, trained on the simulator")


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
