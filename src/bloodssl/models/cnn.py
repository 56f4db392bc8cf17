"""Networks built for 28x28 cells and trained from scratch: the fast CNN (the default), a
wider one, and ResNet-18 adapted to 28x28; all wrap an ``ImageClassifier``."""

from __future__ import annotations

from collections.abc import Sequence

import torchvision
from torch import nn

from bloodssl.models.base import ImageClassifier


def conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (no bias), batch norm, GELU: the unit of the fast CNNs."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    )


def fast_cnn_backbone(widths: Sequence[int] = (32, 64, 128), in_channels: int = 3) -> nn.Sequential:
    """Three conv-pool-conv stages after a stem, in the style of the CIFAR-10 speed-run
    networks: 28 -> 14 -> 7 -> 3 pixels, then global max pooling. About 0.3 M parameters;
    ~1,900 training images/s on 2 CPU cores (channels-last)."""
    stem = widths[0] // 2
    layers: list[nn.Module] = [conv_bn(in_channels, stem)]
    previous = stem
    for width in widths:
        layers += [conv_bn(previous, width), nn.MaxPool2d(2), conv_bn(width, width)]
        previous = width
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def fast_cnn(num_classes: int, mean, std, widths: Sequence[int] = (32, 64, 128)) -> ImageClassifier:
    """The default model: small, fast and built for 28x28 (as many input channels as ``mean`` has)."""
    return ImageClassifier(fast_cnn_backbone(widths, len(mean)), widths[-1], num_classes, mean, std)


def small_cnn(num_classes: int, mean, std) -> ImageClassifier:
    """The fast CNN at half width (~74 k parameters, a quarter of its FLOPs): the deployment
    candidate when images/s matter more than the last fraction of a point."""
    return fast_cnn(num_classes, mean, std, widths=(16, 32, 64))


def wide_cnn(num_classes: int, mean, std) -> ImageClassifier:
    """The fast CNN at 1.5x width (~0.66 M parameters, about 2.3x slower)."""
    return fast_cnn(num_classes, mean, std, widths=(48, 96, 192))


def resnet18_backbone(in_channels: int = 3) -> nn.Module:
    """torchvision's ResNet-18 adapted to 28x28: a 3x3 stride-1 stem and no max-pool,
    as in the MedMNIST v2 benchmark."""
    net = torchvision.models.resnet18()
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return net


def resnet18(num_classes: int, mean, std) -> ImageClassifier:
    """ResNet-18 for 28x28 images (11 M parameters; slow on CPU)."""
    return ImageClassifier(resnet18_backbone(len(mean)), 512, num_classes, mean, std)
