"""Resumable training checkpoints shared by the encoder and autoencoder trainers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class TrainState:
    """Progress that a resumed run continues from."""

    history: list[dict[str, float]]
    best: tuple[float, int]
    best_state: dict[str, torch.Tensor]
    epoch: int


def save_checkpoint(path: str | Path, model: Any, opt: Any, sched: Any, state: TrainState) -> None:
    """Model, optimiser, scheduler, progress and both RNG states, after an epoch."""
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "history": state.history,
            "best": list(state.best),
            "best_state": state.best_state,
            "epoch": state.epoch,
            "config": model.config,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
        },
        path,
    )


def load_checkpoint(path: str | Path, model: Any, opt: Any, sched: Any, device: str) -> TrainState:
    """Restore what :func:`save_checkpoint` wrote into ``model``, ``opt`` and ``sched``; returns the progress."""
    ck = torch.load(path, map_location=device, weights_only=False)
    wanted = getattr(model, "config", None)
    if wanted is not None and "config" in ck:
        # Options added later default to off in checkpoints written before them.
        saved = {**{k: False for k in wanted if k not in ck["config"]}, **ck["config"]}
        if saved != wanted:
            raise ValueError(
                f"checkpoint {path} holds a different network ({saved}) from the one this run trains ({wanted}); "
                "resume from a checkpoint of the same recipe, or train from scratch without --resume"
            )
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    torch.set_rng_state(ck["torch_rng"])
    if "numpy_rng" in ck:
        np.random.set_state(ck["numpy_rng"])
    best = ck["best"]
    return TrainState(ck["history"], (float(best[0]), int(best[1])), ck["best_state"], int(ck["epoch"]))
