"""The training augmentation recipes (``bloodssl.data.recipes``) on a batch of real-sized images."""

from __future__ import annotations

import pytest
import torch

from bloodssl.data.recipes import RECIPES, TrainingAugment


def batch(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 28, 28, generator=generator), torch.arange(n) % 8


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_keeps_the_batch_in_range_and_changes_it_unless_none(name):
    images, targets = batch()
    torch.manual_seed(0)  # torchvision's operations draw from torch's global generator
    out, out_targets = TrainingAugment(name, 8)(images, targets, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, images) == (name == "none")
    if name not in ("mixup", "cutmix"):
        assert torch.equal(out_targets, targets)


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixup_and_cutmix_blend_each_label_with_one_other(name):
    images, targets = batch()
    torch.manual_seed(0)
    _, soft = TrainingAugment(name, 8)(images, targets, torch.Generator().manual_seed(1))
    assert soft.shape == (32, 8)
    assert torch.allclose(soft.sum(1), torch.ones(32))
    assert ((soft > 0).sum(1) <= 2).all()  # its own label and its partner's
    own = soft[torch.arange(32), targets]
    assert (own > 0).all() and (own < 1).any()


def test_recipes_repeat_with_their_seeds():
    images, targets = batch()
    for name in ("noise", "randaugment"):
        torch.manual_seed(0)
        first = TrainingAugment(name, 8)(images, targets, torch.Generator().manual_seed(1))[0]
        torch.manual_seed(0)
        again = TrainingAugment(name, 8)(images, targets, torch.Generator().manual_seed(1))[0]
        assert torch.equal(first, again), name


def test_an_unknown_recipe_names_the_choices():
    with pytest.raises(ValueError, match="unknown augmentation 'fog'; choose one of none, geometric, cell"):
        TrainingAugment("fog", 8)
