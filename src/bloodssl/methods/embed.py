"""Embeddings of every split, cached as ``.npy`` files with a JSON manifest.

Four sources: raw pixels (the floor), the CNN trained on a labelled subset only
(``few_label_cnn``, ``CNNClassifier.transform``), the self-supervised SimCLR encoder
(``bloodssl.methods.simclr``) and, only when the user has the file on disk, torchvision's
ImageNet ResNet-18 (nothing is ever downloaded).

A cache entry is ``<dir>/<profile>/<name>-seed<seed>-<split>.npy`` plus a ``.json``
manifest naming the embedding, seed, split, profile, shape, the md5 of the split's
images and a signature of the encoder's weights. ``<dir>`` is ``$BLOODSSL_EMBEDDINGS`` or
``data/processed/embeddings``. An entry whose array disagrees with its manifest or with
the split size is **rejected** with ``EmbeddingCacheError`` (it was edited or written by
something else: a silent recompute could hide that); an intact entry written for other
images or another encoder is stale and recomputed with a warning.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from sklearn.base import BaseEstimator, TransformerMixin
from torch import nn

from bloodssl import paths
from bloodssl.core.checkpoints import checkpoint_path
from bloodssl.core.hashing import fingerprint, weights_fingerprint
from bloodssl.core.hashing import signature as run_signature
from bloodssl.core.io import atomic_path
from bloodssl.data import Split, to_tensor
from bloodssl.data.splits import labelled_subset, mask_labels
from bloodssl.methods.supervised import CNNClassifier

ENV = "BLOODSSL_EMBEDDINGS"
IMAGENET_ENV = "BLOODSSL_IMAGENET_WEIGHTS"
#: The file name torchvision gives the ImageNet weights of ResNet-18 in its hub cache.
RESNET18_FILE = "resnet18-f37072fd.pth"
#: Checkpoints of the few-label CNNs live in ``models/labelled_cnn/``, shared by notebooks 02 and 03.
CNN_STEM = "labelled_cnn"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EmbeddingCacheError(RuntimeError):
    """A cached embedding disagrees with its manifest or with the split it claims to embed."""


def cache_dir() -> Path:
    """``$BLOODSSL_EMBEDDINGS`` if set, else ``data/processed/embeddings``."""
    return Path(os.environ.get(ENV, paths.DATA_PROCESSED / "embeddings"))


def signature(encoder) -> str:
    """A hash of an encoder's parameters and weights (its ``model_``): equal hash, equal embeddings."""
    params = {k: v for k, v in encoder.get_params().items() if k not in {"checkpoint", "num_threads", "progress"}}
    return run_signature(params, weights_fingerprint(encoder.model_))


def entry(name: str, split: str, *, seed: int, profile: str, directory: Path | None = None) -> tuple[Path, Path]:
    """The ``.npy`` and ``.json`` paths of one cached embedding."""
    stem = f"{name}-seed{seed}-{split}"  # names may hold dots (cnn_0.05), so no with_suffix
    folder = Path(directory or cache_dir()) / profile
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def _load(array_path: Path, manifest_path: Path, split: Split, source: str) -> np.ndarray | None:
    """The cached array if it is intact and fresh; ``None`` if absent or stale."""
    if not (array_path.is_file() and manifest_path.is_file()):
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        array = np.load(array_path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as error:  # a truncated or foreign file
        warnings.warn(f"{array_path} or its manifest cannot be read ({error}); recomputing it.", stacklevel=4)
        return None
    fix = f"Delete {array_path} and {manifest_path.name}, or pass refresh=True to recompute it."
    if list(array.shape) != list(manifest["shape"]):
        raise EmbeddingCacheError(
            f"{array_path} holds an array of shape {array.shape} but its manifest says {tuple(manifest['shape'])}. "
            + fix
        )
    if array.shape[0] != len(split):
        raise EmbeddingCacheError(
            f"{array_path} holds {array.shape[0]} embeddings but the {split.name} split has {len(split)} images; "
            f"expected one row per image. " + fix
        )
    if manifest["images"] != fingerprint(split.images) or manifest["source"] != source:
        what = "images" if manifest["images"] != fingerprint(split.images) else "encoder weights"
        warnings.warn(f"{array_path} was computed from other {what}; recomputing it.", stacklevel=4)
        return None
    array = np.array(array)  # read into memory: the file may be replaced while the array lives
    if manifest.get("content") != fingerprint(array):
        warnings.warn(f"{array_path} does not match the content its manifest recorded (the file changed after it "
                      "was written); recomputing it.", stacklevel=4)  # fmt: skip
        return None
    return array


def _store(array: np.ndarray, array_path: Path, manifest_path: Path, manifest: dict) -> None:
    with atomic_path(array_path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")


def extract(
    name: str,
    splits: Mapping[str, Split],
    transform: Callable[[np.ndarray], np.ndarray],
    *,
    source: str,
    seed: int,
    profile: str,
    directory: Path | None = None,
    refresh: bool = False,
) -> dict[str, np.ndarray]:
    """``transform(split.images)`` for every split, read from the cache when it is there.

    ``source`` identifies what computes the embedding (e.g. ``signature(encoder)``): a
    cache entry written for another source or other images is recomputed with a warning.
    """
    out = {}
    for split_name, split in splits.items():
        array_path, manifest_path = entry(name, split_name, seed=seed, profile=profile, directory=directory)
        array = None if refresh else _load(array_path, manifest_path, split, source)
        if array is None:
            array = np.asarray(transform(split.images), dtype=np.float32)
            if array.ndim != 2 or len(array) != len(split):
                raise ValueError(f"{name} gave shape {array.shape} for {len(split)} images; expected (N, dim)")
            manifest = {"model": name, "seed": seed, "split": split_name, "profile": profile,
                        "shape": list(array.shape), "images": fingerprint(split.images), "source": source,
                        "content": fingerprint(array)}  # fmt: skip
            _store(array, array_path, manifest_path, manifest)
        out[split_name] = array
    return out


def pixels(images: np.ndarray) -> np.ndarray:
    """Raw pixels as float32 vectors in [0, 1], shape (N, H * W * C)."""
    return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255


def pixel_embeddings(splits: Mapping[str, Split], *, seed: int, profile: str, **kwargs) -> dict[str, np.ndarray]:
    """The raw-pixel floor for every split (cached like the others)."""
    return extract("pixels", splits, pixels, source="pixels", seed=seed, profile=profile, **kwargs)


def encoder_embeddings(
    name: str, encoder, splits: Mapping[str, Split], *, seed: int, profile: str, **kwargs
) -> dict[str, np.ndarray]:
    """``encoder.transform`` of every split (a fitted ``CNNClassifier``, ``SimCLREncoder`` or
    ``ImageNetEncoder``), cached under ``name`` and the encoder's weight signature."""
    return extract(name, splits, encoder.transform, source=signature(encoder), seed=seed, profile=profile, **kwargs)


def few_label_cnn(splits: Mapping[str, Split], *, fraction: float, seed: int, profile: str, **params) -> CNNClassifier:
    """The CNN trained on the nested labelled subset (``fraction``, ``seed``) of the training
    split only (``params``: its ``CNNClassifier`` parameters), selected on the validation
    split. Checkpointed under ``models/labelled_cnn/`` (a folder per ``profile``), so a second
    call loads it."""
    train, val = splits["train"], splits["val"]
    labelled = labelled_subset(train.labels, fraction=fraction, seed=seed)
    checkpoint = checkpoint_path(CNN_STEM, "supervised", params.get("model", "cnn"), fraction, seed, profile)
    classifier = CNNClassifier(seed=seed, checkpoint=checkpoint, **params)
    return classifier.fit(train.images, mask_labels(train.labels, labelled), eval_set=(val.images, val.labels))


def labelled_cnn_embeddings(
    splits: Mapping[str, Split], *, profile: str, **params
) -> Callable[[float, int], dict[str, np.ndarray]]:
    """A function of ``(fraction, seed)`` giving every split's embeddings from the
    ``few_label_cnn`` of that labelled subset (trained or loaded, then cached as
    ``cnn_<fraction>``): the embedding a graph method may use at that fraction, since
    it has seen no label beyond the subset."""

    def embeddings(fraction: float, seed: int) -> dict[str, np.ndarray]:
        classifier = few_label_cnn(splits, fraction=fraction, seed=seed, profile=profile, **params)
        return encoder_embeddings(f"cnn_{fraction:g}", classifier, splits, seed=seed, profile=profile)

    return embeddings


def imagenet_weights(path: str | os.PathLike | None = None) -> Path | None:
    """Where torchvision ResNet-18 ImageNet weights are on disk, or ``None``.

    Looks at ``path``, then ``$BLOODSSL_IMAGENET_WEIGHTS``, then torchvision's own cache
    (``<torch hub dir>/checkpoints/resnet18-f37072fd.pth``). A path given explicitly
    (argument or variable) that does not exist is an error rather than a silent skip.
    """
    given = path or os.environ.get(IMAGENET_ENV)
    if given:
        given = Path(given)
        if not given.is_file():
            raise FileNotFoundError(
                f"{given} (ImageNet weights, given by argument or ${IMAGENET_ENV}) does not exist; expected a "
                "torchvision resnet18 state_dict saved with torch.save. Fix the path or unset the variable."
            )
        return given
    cached = Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE
    return cached if cached.is_file() else None


class ImageNetEncoder(TransformerMixin, BaseEstimator):
    """torchvision's ResNet-18 with ImageNet weights read from ``weights`` (a state_dict file):
    images are upsampled to ``size`` pixels, normalised with ImageNet statistics and mapped
    to the 512 features before the classifier. ``fit`` only loads the weights."""

    def __init__(self, weights: str | os.PathLike | None = None, size: int = 64, batch_size: int = 256):
        self.weights = weights
        self.size = size
        self.batch_size = batch_size

    def fit(self, X=None, y=None) -> ImageNetEncoder:
        """Load the weights (no image is needed)."""
        path = imagenet_weights(self.weights)
        if path is None:
            raise FileNotFoundError(
                f"no ImageNet weights found: give weights=PATH or set ${IMAGENET_ENV} to a torchvision resnet18 "
                f"state_dict, or put it at {Path(torch.hub.get_dir()) / 'checkpoints' / RESNET18_FILE}."
            )
        net = torchvision.models.resnet18()
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            net.load_state_dict(state)
        except (RuntimeError, AttributeError, TypeError) as error:
            raise ValueError(
                f"{path} is not a torchvision resnet18 state_dict ({str(error).splitlines()[0]}); expected the dict "
                "that torchvision.models.resnet18().state_dict() has, e.g. resnet18-f37072fd.pth."
            ) from error
        net.fc = nn.Identity()
        self.model_ = net.eval()
        self.path_ = path
        return self

    @torch.inference_mode()
    def transform(self, X) -> np.ndarray:
        """512 ImageNet features per image, shape (N, 512)."""
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        out = []
        for start in range(0, len(X), self.batch_size):
            images = to_tensor(np.asarray(X[start : start + self.batch_size]))
            images = F.interpolate(images, size=self.size, mode="bilinear", align_corners=False)
            out.append(self.model_((images - mean) / std))
        return torch.cat(out).numpy() if out else np.zeros((0, 512), np.float32)
