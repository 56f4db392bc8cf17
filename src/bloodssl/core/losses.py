"""The class weights of the supervised cross-entropy, shared by every CNN trainer."""

from __future__ import annotations

import torch


def class_weights(targets: torch.Tensor, n_classes: int, mode: str | None) -> torch.Tensor | None:
    """Per-class loss weights: inverse class frequency of ``targets`` for ``mode='balanced'``
    (``n / (n_classes * count)``, a missing class counted once), None (unweighted) for None."""
    if mode is None:
        return None
    counts = torch.bincount(targets, minlength=n_classes).clamp(min=1).float()
    return counts.sum() / (n_classes * counts)
