"""The architectures of notebook 07's comparison, built for 28x28 cells: the Keras models of the
repositories we compete with (a basic CNN, one with batch norm and dropout, one with
squeeze-and-excitation) and small VGG- and Inception-style networks.

No library ships these at 28 px (torchvision's VGG and GoogLeNet expect 224 px and three
channels), so the stacks are written here from torchvision's own blocks (``Inception``,
``SqueezeExcitation``) and the default CNN's ``conv_bn``; every one takes as many input
channels as ``mean`` has.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
from torchvision.models.googlenet import Inception
from torchvision.ops import SqueezeExcitation

from bloodssl.models.base import ImageClassifier
from bloodssl.models.cnn import conv_bn


def _plain_stack(in_channels: int, batch_norm: bool, dropout: float) -> nn.Sequential:
    """conv 32 - pool - conv 64 - pool - dense 128, as in the Keras tutorials' basic CNN."""
    layers: list[nn.Module] = []
    for previous, width in ((in_channels, 32), (32, 64)):
        layers += [nn.Conv2d(previous, width, 3, padding=1), *([nn.BatchNorm2d(width)] if batch_norm else []),
                   nn.ReLU(), nn.MaxPool2d(2)]  # fmt: skip
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def basic_cnn(num_classes: int, mean, std) -> ImageClassifier:
    """Two conv-pool stages and a dense layer (0.4 M parameters), no normalisation or dropout."""
    return ImageClassifier(_plain_stack(len(mean), batch_norm=False, dropout=0.0), 128, num_classes, mean, std)


def cnn_bn_dropout(num_classes: int, mean, std) -> ImageClassifier:
    """The basic CNN with batch norm after each conv and dropout 0.3 around the dense layer."""
    return ImageClassifier(_plain_stack(len(mean), batch_norm=True, dropout=0.3), 128, num_classes, mean, std)


def cnn_se(num_classes: int, mean, std, widths: Sequence[int] = (32, 64, 128)) -> ImageClassifier:
    """The default CNN's stages, each followed by squeeze-and-excitation (reduction 8)."""
    layers: list[nn.Module] = [conv_bn(len(mean), widths[0] // 2)]
    previous = widths[0] // 2
    for width in widths:
        squeeze = SqueezeExcitation(width, width // 8)
        layers += [conv_bn(previous, width), nn.MaxPool2d(2), conv_bn(width, width), squeeze]
        previous = width
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
    return ImageClassifier(nn.Sequential(*layers), widths[-1], num_classes, mean, std)


def vgg_cnn(num_classes: int, mean, std, stages: Sequence[int] = (64, 128, 256)) -> ImageClassifier:
    """VGG-style: two 3x3 conv-BN-GELU per stage, max-pool between (28 -> 14 -> 7 -> 3), global
    average pooling (1.2 M parameters, 234 MFLOP per image)."""
    layers: list[nn.Module] = []
    previous = len(mean)
    for width in stages:
        layers += [conv_bn(previous, width), conv_bn(width, width), nn.MaxPool2d(2)]
        previous = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return ImageClassifier(nn.Sequential(*layers), stages[-1], num_classes, mean, std)


def inception_cnn(num_classes: int, mean, std) -> ImageClassifier:
    """Inception-style (0.3 M parameters, 107 MFLOP): a conv stem, then GoogLeNet's inception block (1x1, 3x3, "5x5" and
    pooled branches) at 28, 14 and 7 px, global average pooling."""
    layers = [
        conv_bn(len(mean), 64),
        Inception(64, 32, 48, 64, 8, 16, 16),  # -> 128 channels
        nn.MaxPool2d(2),
        Inception(128, 64, 64, 96, 16, 48, 32),  # -> 240
        nn.MaxPool2d(2),
        Inception(240, 96, 96, 112, 16, 24, 24),  # -> 256
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    return ImageClassifier(nn.Sequential(*layers), 256, num_classes, mean, std)
