"""Training augmentation recipes by name, for ``CNNClassifier(augment=name)``; notebook 07
compares them.

A recipe maps a training batch (float images (N, C, H, W) in [0, 1] and integer targets) to
the batch the network learns from. MixUp and CutMix return soft targets (N, classes), which
``torch.nn.functional.cross_entropy`` takes as they are. The image operations are
torchvision's (``transforms.v2``: RandAugment, AugMix, MixUp, CutMix) except the cheap
batched ones of ``data.augment`` (dihedral transforms, shifts, colour jitter), which act on
the whole batch at once. RandAugment and AugMix draw one set of operations per call, so they
run on groups of ``GROUP`` images (uint8, what their colour operations expect): per image,
AugMix cost ~30 ms a batch image on 2 cores, several times the 28 px network's own step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from bloodssl.data.augment import CellAugment

#: each recipe and what it adds; ``cell`` is notebook 01's (``augment=True``)
RECIPES = {
    "none": "the images as they are",
    "geometric": "dihedral transforms and shifts of up to 2 px",
    "cell": "geometric + mild brightness, contrast and saturation jitter (notebook 01's recipe)",
    "noise": "cell + Gaussian noise of a standard deviation drawn per image up to 0.08",
    "randaugment": "geometric + RandAugment (2 operations at magnitude 9, drawn per group of 8 images)",
    "augmix": "geometric + AugMix (severity 3, drawn per group of 8 images)",
    "mixup": "cell + MixUp (alpha 1): pairs of images and their labels blended",
    "cutmix": "cell + CutMix (alpha 1): a patch of another image pasted, labels mixed by area",
}
GEOMETRIC = CellAugment(brightness=0, contrast=0, saturation=0)
#: RandAugment and AugMix draw their operations once per group of this many images
GROUP = 8
#: the largest standard deviation of the ``noise`` recipe's Gaussian noise (images in [0, 1])
MAX_NOISE = 0.08


@dataclass(frozen=True)
class TrainingAugment:
    """The recipe ``name`` (one of ``RECIPES``) for a network of ``n_classes`` classes."""

    name: str
    n_classes: int

    def __post_init__(self):
        if self.name not in RECIPES:
            raise ValueError(f"unknown augmentation {self.name!r}; choose one of {', '.join(RECIPES)}")

    def __call__(self, images: torch.Tensor, targets: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        if self.name == "none":
            return images, targets
        geometric = self.name in ("geometric", "randaugment", "augmix")
        images = (GEOMETRIC if geometric else CellAugment())(images, generator)
        if self.name == "noise":
            sigma = MAX_NOISE * torch.rand(len(images), 1, 1, 1, generator=generator)
            noise = torch.randn(images.shape, generator=generator)
            return (images + sigma * noise).clamp_(0, 1), targets
        if self.name in ("randaugment", "augmix"):
            operation = v2.RandAugment() if self.name == "randaugment" else v2.AugMix()
            pixels = images.mul(255).round_().to(torch.uint8)
            mixed = torch.cat([operation(group) for group in pixels.split(GROUP)])
            return mixed.float().div_(255), targets
        if self.name in ("mixup", "cutmix"):
            mix = v2.MixUp if self.name == "mixup" else v2.CutMix
            return mix(num_classes=self.n_classes)(images, targets)
        return images, targets
