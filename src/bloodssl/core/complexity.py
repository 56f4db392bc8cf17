"""What a network costs per image: parameters and floating-point operations.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (PyTorch's own counter:
2 per multiply-add of convolutions and matrix products, the work that dominates a CNN;
normalisation, activations and pooling are not counted), on one forward pass in eval mode.
A training step costs about three forward passes (forward, and two products backward).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters of ``model`` (buffers such as batch-norm statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def flops_per_image(model: nn.Module, image_shape: Sequence[int] = (3, 28, 28)) -> int:
    """Forward FLOPs of ``model`` for one image of ``image_shape`` (C, H, W)."""
    if len(image_shape) != 3:
        raise ValueError(f"image_shape is (channels, height, width); got {tuple(image_shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *image_shape))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
