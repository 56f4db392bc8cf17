"""Checkpoints keyed by a run's parameters and a fingerprint of its data, written atomically
with a digest of their tensors and the number of torch threads they were trained with.

A checkpoint whose signature differs from the run's is never resumed (it is another run's),
nor one written under another thread count (CPU kernels split their sums by thread, so the
same seed gives other weights: resuming would mix two runs), nor one that cannot be read or
no longer matches its digest (it was damaged after it was written).
"""

from __future__ import annotations

import hashlib
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


def state_digest(state: dict) -> str:
    """md5 of every tensor in ``state`` (nested dicts and lists included), in a fixed order:
    a checkpoint whose bytes changed after it was written no longer matches its digest."""
    digest = hashlib.md5()

    def visit(value, name: str) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(name.encode())
            digest.update(value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                visit(value[key], f"{name}/{key}")
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                visit(item, f"{name}/{i}")

    visit({k: v for k, v in state.items() if k != "digest"}, "")
    return digest.hexdigest()


def load_checkpoint(path: str | os.PathLike | None, key: str) -> dict | None:
    """The state saved at ``path`` if it was written under ``key`` with the current number
    of torch threads and is intact; None if training must start from scratch: with a warning
    naming the file when another run's, an unreadable or a damaged checkpoint is in the way
    (it is then retrained and overwritten, never trusted).

    The thread count is compared here rather than hashed into ``key``: every caller sets
    its threads (``set_threads``) before loading, the signatures stay those of the
    parameters and data, and the warning can name both counts. A checkpoint saved before
    the count was recorded counts as another thread count."""
    if path is None or not Path(path).is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several kinds for a damaged file
        warnings.warn(f"{path} is not a readable checkpoint ({type(error).__name__}); training from scratch and "
                      "overwriting it.", stacklevel=3)  # fmt: skip
        return None
    if not isinstance(state, dict) or state.get("signature") != key:
        warnings.warn(f"{path} was written for other parameters or data; training from scratch and overwriting it.",
                      stacklevel=3)  # fmt: skip
        return None
    saved, threads = state.get("num_threads"), torch.get_num_threads()
    if saved != threads:
        trained = "without a recorded thread count" if saved is None else f"with {saved} torch threads"
        resume = "" if saved is None else f" To resume it instead, pass num_threads={saved}."
        warnings.warn(f"{path} was trained {trained} but this run uses {threads} (the same seed gives other "
                      f"weights); training from scratch and overwriting it.{resume}", stacklevel=3)  # fmt: skip
        return None
    if state.get("digest") != state_digest(state):
        warnings.warn(f"{path} does not match the digest it was saved with (its bytes changed after it was "
                      "written); training from scratch and overwriting it.", stacklevel=3)  # fmt: skip
        return None
    return state


def save_checkpoint(path: str | os.PathLike | None, state: dict) -> None:
    """Write ``state`` with its ``digest`` and the current number of torch threads
    (``num_threads``) to ``path`` atomically (nothing when ``path`` is None)."""
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save({**state, "num_threads": torch.get_num_threads(), "digest": state_digest(state)}, tmp)


def checkpoint_path(stem: str, method: str, model: str, fraction: float, seed: int, profile: str) -> Path:
    """Where the checkpoint of one run lives: ``models/<stem>/<method>-<model>-...pt``."""
    return paths.MODELS / stem / f"{method}-{model}-f{fraction:g}-s{seed}-{profile}.pt"
