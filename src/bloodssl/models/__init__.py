"""Image classifiers for 28x28 cells, by name: ``build_model(name, num_classes)``.

Every model is an ``ImageClassifier`` (``base``): it takes float images in [0, 1],
normalises them with per-channel statistics it keeps as buffers (so a checkpoint carries
them), and offers ``features(x)`` (the penultimate embedding) as well as ``forward(x)``
(the logits). ``cnn`` holds the networks trained from scratch, ``classic`` the architectures notebook 07
compares them with, ``efficientnet`` the ImageNet-pretrained one (the ``transfer`` extra).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial

from bloodssl.models.base import ImageClassifier
from bloodssl.models.classic import basic_cnn, cnn_bn_dropout, cnn_se, inception_cnn, vgg_cnn
from bloodssl.models.cnn import fast_cnn, fast_cnn_backbone, resnet18, resnet18_backbone, small_cnn, wide_cnn
from bloodssl.models.efficientnet import efficientnet_lite0

MODELS: dict[str, Callable[..., ImageClassifier]] = {
    "cnn": fast_cnn,
    "small_cnn": small_cnn,
    "wide_cnn": wide_cnn,
    "resnet18": resnet18,
    "efficientnet_lite0": efficientnet_lite0,
    "efficientnet_lite0_64": partial(efficientnet_lite0, image_size=64),
    "basic_cnn": basic_cnn,
    "cnn_bn_dropout": cnn_bn_dropout,
    "cnn_se": cnn_se,
    "vgg_cnn": vgg_cnn,
    "inception_cnn": inception_cnn,
}


def build_model(
    name: str,
    num_classes: int,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.25, 0.25, 0.25),
    **options,
) -> ImageClassifier:
    """Build a model from the registry; ``mean``/``std`` are the training images' channel
    statistics (one value per input channel: 1 for grey images, 3 for RGB); ``options`` go
    to the model's builder (``pretrained=False`` for an EfficientNet without ImageNet weights)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](num_classes, mean, std, **options)


def build_architecture(name: str, num_classes: int, mean: Sequence[float], std: Sequence[float]) -> ImageClassifier:
    """The network of ``name`` without pretrained weights, to load a trained state dict into
    (a model that would fetch ImageNet weights is built with ``pretrained=False``)."""
    builder = MODELS.get(name)
    takes_weights = builder is not None and "pretrained" in inspect.signature(builder).parameters
    return build_model(name, num_classes, mean, std, **({"pretrained": False} if takes_weights else {}))


__all__ = ["MODELS", "ImageClassifier", "build_architecture", "build_model", "fast_cnn", "fast_cnn_backbone",
           "resnet18", "resnet18_backbone", "small_cnn", "wide_cnn", "efficientnet_lite0", "basic_cnn",
           "cnn_bn_dropout", "cnn_se", "vgg_cnn", "inception_cnn"]  # fmt: skip
