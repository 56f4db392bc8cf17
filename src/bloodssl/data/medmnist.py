"""MedMNIST v2 2D datasets (28x28) as verified arrays and torch Datasets; BloodMNIST by default.

A dataset is named by its medmnist flag (``bloodmnist``, ``pneumoniamnist``, ...): its class
names, channels, md5 and split sizes come from medmnist's own metadata (``dataset_info``),
so nothing here disagrees with the upstream benchmark. The file is the official
``<flag>.npz``; ``data.fetch`` puts a verified copy under ``data/raw/``.
"""

from __future__ import annotations

import functools
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from medmnist import INFO

from bloodssl import paths
from bloodssl.core.io import md5sum

METADATA = INFO["bloodmnist"]
CLASS_NAMES: tuple[str, ...] = tuple(METADATA["label"][str(i)] for i in range(len(METADATA["label"])))
SHORT_NAMES: tuple[str, ...] = tuple(name.split("(")[0].strip() for name in CLASS_NAMES)
N_CLASSES = len(CLASS_NAMES)
SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_SIZES: dict[str, int] = dict(METADATA["n_samples"])
OFFICIAL_MD5: str = METADATA["MD5"]
IMAGE_SHAPE = (28, 28, 3)
FILENAME = "bloodmnist.npz"


class DataError(RuntimeError):
    """The data file is missing, corrupt, or not the official MedMNIST file."""


@dataclass(frozen=True)
class DatasetInfo:
    """What medmnist's ``INFO`` says of one 2D dataset: class names, channels (1 grey, 3
    RGB), the md5 of its 28x28 file and its split sizes."""

    flag: str
    class_names: tuple[str, ...]
    n_channels: int
    md5: str
    split_sizes: dict[str, int]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def short_names(self) -> tuple[str, ...]:
        """Class names without medmnist's parenthesised details, for tables and plots."""
        return tuple(name.split("(")[0].strip() for name in self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one image as the ``.npz`` stores it (grey images have no channel axis)."""
        return (28, 28) if self.n_channels == 1 else (28, 28, self.n_channels)

    @property
    def filename(self) -> str:
        return f"{self.flag}.npz"


def flags_2d() -> list[str]:
    """The medmnist flags this package can train on: 2D, one class per image."""
    return sorted(f for f, info in INFO.items() if not f.endswith("3d") and "multi-label" not in info["task"])


def dataset_info(flag: str = "bloodmnist") -> DatasetInfo:
    """The ``DatasetInfo`` of medmnist's ``flag``; an unknown, 3D or multi-label one is
    refused with the flags that work."""
    if flag not in flags_2d():
        why = "is not a medmnist flag"
        if flag in INFO:
            why = "is a 3D dataset" if flag.endswith("3d") else "is multi-label"
        raise DataError(f"{flag!r} {why}; bloodssl trains on 2D single-label datasets: {', '.join(flags_2d())}")
    info = INFO[flag]
    names = tuple(info["label"][str(i)] for i in range(len(info["label"])))
    return DatasetInfo(flag, names, int(info["n_channels"]), info["MD5"], dict(info["n_samples"]))


def default_path(flag: str = "bloodmnist") -> Path:
    """``data/raw/<flag>.npz`` in the repository (for BloodMNIST, ``$BLOODMNIST_NPZ`` if set)."""
    default = paths.DATA_RAW / dataset_info(flag).filename
    return Path(os.environ.get("BLOODMNIST_NPZ", default)) if flag == "bloodmnist" else default


@dataclass(frozen=True)
class Split:
    """One split as arrays: ``images`` (N, 28, 28, 3) uint8 and ``labels`` (N,) int64."""

    name: str
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Split:
        """The same split restricted to ``indices`` (in that order)."""
        indices = np.asarray(indices)
        return Split(self.name, self.images[indices], self.labels[indices])

    def class_counts(self, n_classes: int | None = None) -> np.ndarray:
        """Images per class, indexed by label (``n_classes`` entries; default: up to the largest label)."""
        return np.bincount(self.labels, minlength=n_classes or 0)


def _fix_hint(path: Path, flag: str = "bloodmnist") -> str:
    if flag != "bloodmnist":
        return f"Delete {path} and run `make data DATASET={flag} SRC=/path/to/{flag}.npz` with a verified copy."
    return (
        f"Delete {path} and run `make data`, or point BLOODMNIST_NPZ at a verified copy "
        "(the README's data section gives a route that needs only the package index)."
    )


def verify_md5(path: Path, expected: str = OFFICIAL_MD5, flag: str = "bloodmnist") -> None:
    """Raise ``DataError`` unless ``path`` exists and has the ``expected`` md5."""
    if not path.is_file():
        raise DataError(
            f"{path} does not exist. Run `make data{'' if flag == 'bloodmnist' else ' DATASET=' + flag}` to copy or "
            f"download the official 28x28 {flag} file and check its md5"
            + (", or point BLOODMNIST_NPZ at a copy." if flag == "bloodmnist" else ".")
        )
    found = md5sum(path)
    if found != expected:
        raise DataError(
            f"{path} has md5 {found} but the official 28x28 {flag} file has {expected}. " + _fix_hint(path, flag)
        )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error}). " + _fix_hint(path)) from error


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], splits: Sequence[str], info: DatasetInfo) -> None:
    expected_keys = [f"{split}_{kind}" for split in splits for kind in ("images", "labels")]
    missing = [key for key in expected_keys if key not in arrays]
    if missing:
        raise DataError(
            f"{path} has no {', '.join(missing)}; it holds {', '.join(sorted(arrays)) or 'nothing'}. "
            f"The {info.flag} file has images and labels for train, val and test. " + _fix_hint(path, info.flag)
        )
    for split in splits:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[1:] != info.image_shape or images.dtype != np.uint8:
            kind = "grey" if info.n_channels == 1 else "RGB"
            raise DataError(
                f"{path}: {split}_images has shape {images.shape} and dtype {images.dtype}; "
                f"expected (N, {', '.join(map(str, info.image_shape))}) uint8 (28x28 {kind}). "
                + _fix_hint(path, info.flag)
            )
        if labels.reshape(len(labels), -1).shape != (len(images), 1):
            raise DataError(
                f"{path}: {split}_labels has shape {labels.shape} for {len(images)} images; "
                f"expected ({len(images)}, 1). " + _fix_hint(path, info.flag)
            )
        if labels.size and (labels.min() < 0 or labels.max() >= info.n_classes):
            raise DataError(
                f"{path}: {split}_labels holds values {labels.min()}..{labels.max()}; "
                f"expected 0..{info.n_classes - 1}. " + _fix_hint(path, info.flag)
            )


@functools.lru_cache(maxsize=4)
def _load_cached(path: Path, mtime_ns: int, size: int, md5: str | None, flag: str) -> dict[str, Split]:
    info = dataset_info(flag)
    if md5 is not None:
        verify_md5(path, md5, flag)
    arrays = _read_arrays(path)
    present = [s for s in SPLITS if f"{s}_images" in arrays or f"{s}_labels" in arrays]
    _check_arrays(path, arrays, present or SPLITS, info)
    splits = {}
    for name in present:
        images = arrays[f"{name}_images"]
        images = images[..., None] if images.ndim == 3 else images  # grey: (N, 28, 28, 1)
        images.flags.writeable = False
        labels = arrays[f"{name}_labels"].reshape(-1).astype(np.int64)
        labels.flags.writeable = False
        splits[name] = Split(name, images, labels)
    return splits


def load_split(
    split: str, path: str | os.PathLike | None = None, *, flag: str = "bloodmnist", md5: str | None = "official"
) -> Split:
    """Load one split (``train``, ``val`` or ``test``) of the verified ``flag`` file.

    Images are (N, 28, 28, C) uint8 (C = 1 for grey datasets). ``md5="official"`` checks
    the file against medmnist's md5 of ``flag``; ``md5=None`` skips the checksum (for small
    files made by tests); the keys, shapes, dtypes and label range are checked either way.
    The file is read once per process.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; MedMNIST has the splits {', '.join(SPLITS)}.")
    info = dataset_info(flag)
    md5 = info.md5 if md5 == "official" else md5
    path = Path(path) if path is not None else default_path(flag)
    if not path.is_file():
        verify_md5(path, info.md5, flag)  # raises the missing-file message
    stat = path.stat()
    splits = _load_cached(path.resolve(), stat.st_mtime_ns, stat.st_size, md5, flag)
    if split not in splits:
        _check_arrays(path, {}, [split], info)
    return splits[split]


def load_splits(
    flag: str = "bloodmnist", path: str | os.PathLike | None = None, *, md5: str | None = "official"
) -> dict[str, Split]:
    """All three splits of ``flag``, keyed by name (see ``load_split``)."""
    return {name: load_split(name, path, flag=flag, md5=md5) for name in SPLITS}


def load_dataset(flag: str = "bloodmnist", data_file: str | os.PathLike | None = None) -> tuple:
    """What a notebook loads: ``(dataset_info(flag), load_splits(flag))`` from the verified
    official file, or from ``data_file`` (a file in medmnist's layout that is not the
    official one, e.g. a test's synthetic data: its md5 is not checked, its layout is)."""
    return dataset_info(flag), load_splits(flag, data_file, md5="official" if data_file is None else None)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) images as float (N, C, H, W) in [0, 1]."""
    return torch.tensor(images).permute(0, 3, 1, 2).float().div_(255)


class BloodMNISTDataset(torch.utils.data.Dataset):
    """A split held in memory as float tensors in [0, 1], shape (C, H, W), and int64 labels.

    Indexing with a list or tensor of indices returns a whole batch at once, so a
    ``DataLoader(dataset, sampler=BatchSampler(...), batch_size=None)`` avoids the
    per-image Python overhead that dominates on 28x28 images.
    """

    def __init__(self, split: Split | str, transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        split = load_split(split) if isinstance(split, str) else split
        self.split = split.name
        self.images = to_tensor(split.images)
        self.labels = torch.tensor(split.labels)
        self.transform = transform
        self.classes = CLASS_NAMES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]
