"""What every model of the registry is: a backbone that maps images to an embedding, then a
linear head. Images come in as floats in [0, 1] and are normalised with per-channel
statistics kept as buffers, so a checkpoint carries them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn


class ImageClassifier(nn.Module):
    """A backbone that maps images to ``embedding_dim`` features, then a linear head."""

    def __init__(
        self,
        backbone: nn.Module,
        embedding_dim: int,
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
    ):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.backbone = backbone
        self.head = nn.Linear(embedding_dim, num_classes)
        self.embedding_dim = embedding_dim

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features, shape (N, embedding_dim)."""
        return self.backbone((images - self.mean) / self.std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def load_backbone(model: ImageClassifier, path: str | os.PathLike) -> None:
    """Start ``model``'s backbone and input statistics from the training checkpoint at
    ``path`` (``core.checkpoints``: its ``model`` state) of a network of the same
    architecture, e.g. a SimCLR encoder's (``methods.simclr``); the head is not taken, so a
    projection head or another number of classes does not matter."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train the network it should hold first (e.g. notebook 02's "
                                "SimCLR encoder, methods.simclr.train_encoder), or pass init_from=None")  # fmt: skip
    state = torch.load(path, map_location="cpu", weights_only=True)
    weights = state.get("model", state) if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise ValueError(f"{path} holds no state dict of a network (a checkpoint's 'model' or a state dict itself)")
    kept = {name: value for name, value in weights.items() if not name.startswith("head.")}
    expected = {name for name in model.state_dict() if not name.startswith("head.")}
    if set(kept) != expected or any(kept[n].shape != model.state_dict()[n].shape for n in expected):
        raise ValueError(f"{path} holds the weights of another architecture than this network's: pass a checkpoint "
                         "of the same registered model (init_from and model must agree)")  # fmt: skip
    model.load_state_dict(kept, strict=False)
