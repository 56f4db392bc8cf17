"""Parameter and FLOP counts against a case computed by hand, and the registry's default CNN."""

from __future__ import annotations

import pytest
from torch import nn

from bloodssl.core.complexity import flops_per_image, parameters
from bloodssl.models import build_model


def test_counts_match_a_hand_computed_network():
    # conv 3->4, 3x3, pad 1 on 8x8: 4*8*8 outputs x 27 multiply-adds; linear 256->2: 512 multiply-adds
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    assert parameters(net) == (4 * 27 + 4) + (256 * 2 + 2)
    assert flops_per_image(net, (3, 8, 8)) == 2 * (4 * 8 * 8 * 27) + 2 * (256 * 2)
    net[0].weight.requires_grad_(False)
    assert parameters(net, trainable_only=True) == 4 + 256 * 2 + 2


def test_the_default_cnn_costs_about_32_mflop_and_counting_keeps_its_mode():
    model = build_model("cnn", 8).train()
    assert flops_per_image(model) == pytest.approx(32.2e6, rel=0.01) and model.training
    assert parameters(model) == pytest.approx(0.29e6, rel=0.02)
    with pytest.raises(ValueError, match="channels, height, width"):
        flops_per_image(model, (28, 28))
