"""Batched tensor augmentation for blood-cell images.

Cells have no canonical orientation, so the eight flips and 90-degree rotations of the
dihedral group are free label-preserving views; small shifts and a mild colour jitter
cover centring and staining differences. Everything acts on a whole (N, C, H, W) batch
at once: torchvision's per-image transforms would cost more than the 28x28 model itself
on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bloodssl.data.medmnist import to_tensor

_GREY = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def dihedral(images: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Rotate by ``k`` quarter turns, then optionally flip left-right."""
    out = torch.rot90(images, k, dims=(2, 3)) if k % 4 else images
    return out.flip(3) if flip else out


def random_dihedral(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image gets one of the eight dihedral transforms, uniformly."""
    choice = torch.randint(0, 8, (len(images),), generator=generator)
    out = images.clone()
    for code in range(1, 8):
        selected = choice == code
        if selected.any():
            out[selected] = dihedral(images[selected], code % 4, code >= 4)
    return out


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y (reflect padding)."""
    if max_shift == 0:
        return images
    n, _, height, width = images.shape
    padded = F.pad(images, [max_shift] * 4, mode="reflect")
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
    out = torch.empty_like(images)
    for y in range(2 * max_shift + 1):
        for x in range(2 * max_shift + 1):
            selected = (dy == y) & (dx == x)
            if selected.any():
                out[selected] = padded[selected, :, y : y + height, x : x + width]
    return out


def colour_jitter(
    images: torch.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Scale brightness, contrast and saturation by per-image factors in [1 - s, 1 + s]."""
    n = len(images)

    def factors(strength: float) -> torch.Tensor:
        return 1 + strength * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)

    out = images * factors(brightness)
    grey = luminance(out)
    out = (out - grey.mean((2, 3), keepdim=True)) * factors(contrast) + grey.mean((2, 3), keepdim=True)
    grey = luminance(out)
    out = (out - grey) * factors(saturation) + grey  # a grey image has no saturation to change
    return out.clamp_(0, 1)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """The grey level (N, 1, H, W) of RGB images (ITU-R 601 weights); a grey image is its own."""
    return images if images.shape[1] == 1 else (images * _GREY).sum(1, keepdim=True)


def random_cutout(images: torch.Tensor, size: int, generator: torch.Generator, fill: float = 0.5) -> torch.Tensor:
    """Fill a ``size`` x ``size`` square (clipped at the border) around a random centre of
    each image with grey ``fill``; 0 leaves the batch as it is."""
    if size == 0:
        return images
    n, _, height, width = images.shape
    cy = torch.randint(0, height, (n,), generator=generator)
    cx = torch.randint(0, width, (n,), generator=generator)
    rows = (torch.arange(height).view(1, -1, 1) - cy.view(-1, 1, 1)).abs() <= size // 2
    cols = (torch.arange(width).view(1, 1, -1) - cx.view(-1, 1, 1)).abs() <= size // 2
    return images.masked_fill((rows & cols).unsqueeze(1), fill)


@dataclass(frozen=True)
class CellAugment:
    """Random dihedral transform, shift and colour jitter of a batch in [0, 1]."""

    rotate: bool = True
    max_shift: int = 2
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.rotate:
            images = random_dihedral(images, generator)
        images = random_shift(images, self.max_shift, generator)
        if self.brightness or self.contrast or self.saturation:
            images = colour_jitter(images, self.brightness, self.contrast, self.saturation, generator)
        return images


@dataclass(frozen=True)
class StrongAugment:
    """A strong view of uint8 images (N, H, W, 3): dihedral transform, shift of up to
    ``max_shift`` pixels, colour jitter of ``jitter`` and a grey ``cutout`` x ``cutout`` patch.

    The student of a round trains on such views of the pseudo-labelled images (on top of
    its own mild augmentation) while the teacher labelled the clean images: the noisy
    student recipe, which makes the student learn more than its teacher knew.
    """

    max_shift: int = 4
    jitter: float = 0.4
    cutout: int = 10

    def __call__(self, images: np.ndarray, generator: torch.Generator) -> np.ndarray:
        x = self.on_tensor(to_tensor(images), generator)
        return x.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def on_tensor(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The same views of a float batch (N, C, H, W) in [0, 1], for online training."""
        x = random_shift(random_dihedral(images, generator), self.max_shift, generator)
        return random_cutout(colour_jitter(x, self.jitter, self.jitter, self.jitter, generator), self.cutout, generator)
