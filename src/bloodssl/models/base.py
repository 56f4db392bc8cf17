"""What every model of the registry is: a backbone that maps images to an embedding, then a
linear head. Images come in as floats in [0, 1] and are normalised with per-channel
statistics kept as buffers, so a checkpoint carries them."""

from __future__ import annotations

from collections.abc import Sequence

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
