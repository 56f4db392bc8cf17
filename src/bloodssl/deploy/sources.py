"""Where the images to label come from, read a range at a time so memory stays flat:
a MedMNIST npz split (``NpzImages``), a folder of PNG/JPEG files of any size
(``ImageFolder``) and the real images repeated with random augmentation for as long as
asked (``AugmentedStream``, to measure throughput on millions of images that never sit in
memory together).

Every source has a length, a ``describe()`` dict (what a labelling run's manifest records)
and ``read(start, stop)``, which returns the same ``Batch`` every time it is asked for the
same range: a resumed run and a run on Ray see exactly the images of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from bloodssl.core.hashing import fingerprint
from bloodssl.core.io import md5sum

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class Batch:
    """Images ``(n, size, size, channels)`` uint8 with one id each, and the ids that could
    not be read with the reason (``errors``: ``[(id, reason), ...]``)."""

    ids: list[str]
    images: np.ndarray
    errors: list[tuple[str, str]] = field(default_factory=list)


class ImageSource(Protocol):
    """What the batch predictor reads from."""

    def __len__(self) -> int: ...

    def describe(self) -> dict: ...

    def read(self, start: int, stop: int) -> Batch: ...


class NpzImages:
    """One split of a MedMNIST npz file (``test`` by default) as (N, H, W, C) images (a grey
    dataset's (N, H, W) get their channel axis); ids are ``<split>/<index>``."""

    def __init__(self, path: str | os.PathLike, split: str = "test"):
        self.path, self.split = Path(path).resolve(), split
        with np.load(self.path) as archive:
            key = f"{split}_images"
            if key not in archive:
                raise ValueError(f"{self.path} has no {key!r} array (it has {', '.join(archive.files)}); pass a "
                                 "MedMNIST npz and one of its splits")  # fmt: skip
            images = archive[key]
        self.images = images[..., None] if images.ndim == 3 else images

    def __len__(self) -> int:
        return len(self.images)

    def describe(self) -> dict:
        return {"source": "npz", "path": str(self.path), "md5": md5sum(self.path), "split": self.split,
                "n_images": len(self)}  # fmt: skip

    def read(self, start: int, stop: int) -> Batch:
        ids = [f"{self.split}/{i}" for i in range(start, min(stop, len(self)))]
        return Batch(ids, np.ascontiguousarray(self.images[start:stop]))


class ImageFolder:
    """Every image file below ``root`` (sorted, recursively), cut to its central ``crop``
    fraction when given, resized to ``size`` x ``size`` with Pillow's antialiased bicubic
    filter and converted to RGB (or grey for ``channels=1``); ids are paths relative to
    ``root``. The crop matters: BloodMNIST's cells are the central 200 x 200 pixels of the PBC
    dataset's 360 x 363 images, so raw PBC files need ``crop=200/360`` for the cells to have
    the size the network learnt. A JPEG is decoded straight at the smallest of 1/2, 1/4 or
    1/8 of its size that is still at least ``size`` (Pillow's ``draft``). A file Pillow
    cannot read is an error of the batch, not of the run."""

    def __init__(self, root: str | os.PathLike, size: int = 28, channels: int = 3, crop: float | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ValueError(f"{self.root} is not a folder; pass the folder that holds the images to label")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
        if crop is not None and not 0 < crop <= 1:
            raise ValueError(f"crop is the central fraction of each image to keep, in (0, 1]; got {crop}")
        self.size, self.channels, self.crop = size, channels, crop
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise ValueError(f"{self.root} holds no image file ({', '.join(IMAGE_SUFFIXES)})")

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> dict:
        """The folder, the settings and a digest of every file's relative path and size: a
        folder whose files changed is another source (its shards would hold other images)."""
        listing = "\n".join(f"{p.relative_to(self.root).as_posix()}\t{p.stat().st_size}" for p in self.files)
        files_md5 = hashlib.md5(listing.encode()).hexdigest()
        return {"source": "folder", "path": str(self.root), "size": self.size, "channels": self.channels,
                "crop": self.crop, "n_images": len(self), "files_md5": files_md5}  # fmt: skip

    def load(self, path: Path) -> np.ndarray:
        """One file as a ``(size, size, channels)`` uint8 array."""
        with Image.open(path) as image:
            mode = "RGB" if self.channels == 3 else "L"
            needed = math.ceil(self.size / (self.crop or 1.0))
            image.draft(mode, (needed, needed))  # a JPEG decodes at 1/2, 1/4 or 1/8 scale: far less work
            if self.crop is not None:
                width, height = image.size
                keep_w, keep_h = round(width * self.crop), round(height * self.crop)
                left, top = (width - keep_w) // 2, (height - keep_h) // 2
                image = image.crop((left, top, left + keep_w, top + keep_h))
            image = image.convert(mode)
            image = image.resize((self.size, self.size), Image.Resampling.BICUBIC)
            array = np.asarray(image, dtype=np.uint8)
        return array if self.channels == 3 else array[..., None]

    def read(self, start: int, stop: int) -> Batch:
        ids, images, errors = [], [], []
        for path in self.files[start:stop]:
            name = path.relative_to(self.root).as_posix()
            try:
                images.append(self.load(path))
                ids.append(name)
            except Exception as error:  # noqa: BLE001 - Pillow raises many kinds for a bad file
                errors.append((name, f"{type(error).__name__}: {error}"))
        shape = (0, self.size, self.size, self.channels)
        return Batch(ids, np.stack(images) if images else np.zeros(shape, np.uint8), errors)


class AugmentedStream:
    """``n_images`` images drawn at random from ``images`` (N, H, W, C uint8), each under a
    random flip/rotation and a mild brightness and contrast change: a stream as long as
    asked that is never held in memory. Image ``i`` depends only on ``seed`` and the range
    it is read in, so a resumed run reads the same images."""

    def __init__(self, images: np.ndarray, n_images: int, seed: int = 0, jitter: float = 0.1):
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W, C) uint8, got {images.shape} {images.dtype}")
        if n_images < 1:
            raise ValueError(f"n_images must be positive, got {n_images}")
        self.images, self.n_images, self.seed, self.jitter = images, n_images, seed, jitter

    def __len__(self) -> int:
        return self.n_images

    def describe(self) -> dict:
        return {"source": "augmented", "n_images": self.n_images, "seed": self.seed, "jitter": self.jitter,
                "base_images": len(self.images), "base_fingerprint": fingerprint(self.images)}  # fmt: skip

    def read(self, start: int, stop: int) -> Batch:
        stop = min(stop, self.n_images)
        rng = np.random.default_rng([self.seed, start])
        n = stop - start
        batch = self.images[rng.integers(0, len(self.images), n)]
        view = rng.integers(0, 8, n)
        for k in range(8):  # the eight flips/rotations, each applied to its images at once
            chosen = view == k
            turned = np.rot90(batch[chosen], k % 4, axes=(1, 2))
            batch[chosen] = turned[:, :, ::-1] if k >= 4 else turned
        gain = 1 + rng.uniform(-self.jitter, self.jitter, (n, 1, 1, 1)).astype(np.float32)
        shift = rng.uniform(-self.jitter, self.jitter, (n, 1, 1, 1)).astype(np.float32) * 255
        for i in range(0, n, 4096):  # in chunks, so the float copy stays small
            chunk = slice(i, i + 4096)
            batch[chunk] = np.clip(batch[chunk] * gain[chunk] + shift[chunk], 0, 255)
        return Batch([f"aug/{i}" for i in range(start, stop)], batch)
