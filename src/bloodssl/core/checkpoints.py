"""Checkpoints keyed by a run's parameters and a fingerprint of its data, written atomically.

A checkpoint whose signature differs from the run's is never resumed: it is another run's.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from bloodssl import paths
from bloodssl.core.io import atomic_path


def training_state(model, optimizer, scheduler, generator: torch.Generator) -> dict:
    """Everything a resumed run needs to continue bit for bit (weights, optimiser,
    schedule and both random streams), for a per-epoch checkpoint."""
    return dict(model=model.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                torch_rng=torch.get_rng_state(), generator=generator.get_state())  # fmt: skip


def restore_training(state: dict, model, optimizer, scheduler, generator: torch.Generator) -> None:
    """Load what ``training_state`` saved back into a fresh run."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    generator.set_state(state["generator"])


def load_checkpoint(path: str | os.PathLike | None, key: str) -> dict | None:
    """The state saved at ``path`` if it was written under ``key``; None (with a warning
    when another run's checkpoint is in the way) if training must start from scratch."""
    if path is None or not Path(path).is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("signature") != key:
        warnings.warn(f"{path} was written for other parameters or data; training from scratch and overwriting it.",
                      stacklevel=3)  # fmt: skip
        return None
    return state


def save_checkpoint(path: str | os.PathLike | None, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (nothing when ``path`` is None)."""
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)


def checkpoint_path(stem: str, method: str, model: str, fraction: float, seed: int, profile: str) -> Path:
    """Where the checkpoint of one run lives: ``models/<stem>/<method>-<model>-...pt``."""
    return paths.MODELS / stem / f"{method}-{model}-f{fraction:g}-s{seed}-{profile}.pt"
