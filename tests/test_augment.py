from __future__ import annotations

import torch

from bloodssl.data.augment import CellAugment, colour_jitter, dihedral, random_dihedral, random_shift


def _batch(n=64, seed=0):
    return torch.rand(n, 3, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_the_eight_dihedral_views_are_distinct():
    image = _batch(1)
    views = [dihedral(image, k, f) for f in (False, True) for k in range(4)]
    assert len({tuple(v.flatten()[:50].tolist()) for v in views}) == 8


def test_random_dihedral_moves_pixels_but_keeps_them():
    images = _batch()
    out = random_dihedral(images, torch.Generator().manual_seed(1))
    assert not torch.equal(out, images)
    assert torch.equal(out.flatten(1).sort(1).values, images.flatten(1).sort(1).values)


def test_shift_is_a_crop_of_the_reflect_padded_image():
    images = _batch(32)
    out = random_shift(images, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, [2] * 4, mode="reflect")
    for i in range(len(images)):
        crops = [padded[i, :, y : y + 28, x : x + 28] for y in range(5) for x in range(5)]
        assert any(torch.equal(out[i], crop) for crop in crops)
    assert torch.equal(random_shift(images, 0, torch.Generator()), images)


def test_colour_jitter_stays_in_range_and_is_identity_at_zero_strength():
    images = _batch()
    out = colour_jitter(images, 0.5, 0.5, 0.5, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, images)
    same = colour_jitter(images, 0.0, 0.0, 0.0, torch.Generator().manual_seed(0))
    assert torch.allclose(same, images, atol=1e-6)


def test_augmentation_is_deterministic_per_generator_seed():
    images = _batch()
    first = CellAugment()(images, torch.Generator().manual_seed(5))
    second = CellAugment()(images, torch.Generator().manual_seed(5))
    other = CellAugment()(images, torch.Generator().manual_seed(6))
    assert torch.equal(first, second) and not torch.equal(first, other)
