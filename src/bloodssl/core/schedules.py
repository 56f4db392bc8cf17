"""Learning-rate schedules and the thread count of a training run."""

from __future__ import annotations

import math
import os

import torch

SCHEDULES = ("onecycle", "cosine")


def set_threads(num_threads: int | None = None) -> int:
    """Use ``num_threads`` intra-op threads (default: every core this process may run on,
    so ``taskset`` or a container's CPU set is respected) and return the count."""
    torch.set_num_threads(num_threads or len(os.sched_getaffinity(0)) or 1)
    return torch.get_num_threads()


def lr_factor(schedule: str, step: int, total: int, warmup: float = 0.2) -> float:
    """Multiplier of the peak learning rate at ``step`` of ``total``.

    ``onecycle``: linear warm-up over the first 20 % of steps, then linear decay to 0
    (the triangular schedule of the CIFAR speed runs); ``cosine``: cosine decay to 0.
    Written as a function for ``LambdaLR`` because torch's ``OneCycleLR`` divides by zero
    on the handful of steps a tiny labelled set gives.
    """
    progress = min(step / max(total, 1), 1.0)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if progress < warmup:
        return 0.04 + 0.96 * progress / warmup
    return (1 - progress) / (1 - warmup)
