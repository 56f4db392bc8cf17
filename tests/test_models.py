from __future__ import annotations

import pytest
import torch
from torch import nn

from bloodssl.models import MODELS, build_model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_gives_logits_and_embeddings(name):
    options = {"pretrained": False} if name.startswith("efficientnet") else {}  # weights: test_efficientnet
    model = build_model(name, num_classes=8, **options).eval()
    images = torch.rand(2, 3, 28, 28)
    with torch.no_grad():
        logits, features = model(images), model.features(images)
    assert logits.shape == (2, 8)
    assert features.shape == (2, model.embedding_dim)
    assert torch.allclose(model.head(features), logits, atol=1e-5)


def test_resnet18_is_adapted_to_28x28():
    backbone = build_model("resnet18", 8).backbone
    assert backbone.conv1.kernel_size == (3, 3) and backbone.conv1.stride == (1, 1)
    assert isinstance(backbone.maxpool, nn.Identity)


def test_normalisation_statistics_travel_with_the_weights():
    model = build_model("cnn", 8, mean=(0.1, 0.2, 0.3), std=(1.0, 2.0, 3.0))
    copy = build_model("cnn", 8)
    copy.load_state_dict(model.state_dict())
    assert torch.allclose(copy.mean.flatten(), torch.tensor([0.1, 0.2, 0.3]))


def test_unknown_model_lists_the_choices():
    with pytest.raises(
        ValueError, match="unknown model 'vgg'; choose one of cnn, small_cnn, wide_cnn, resnet18, efficientnet_lite0"
    ):
        build_model("vgg", 8)
