"""Shared fixtures. Outputs of every test (and of the notebooks that papermill runs) go
to a temporary folder, never to the committed reports/, models/ or data/processed/."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _running(pid: str) -> bool:
    """Whether the process ``pid`` is alive (signal 0 checks without sending)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


# this file runs twice in a process that also imports it by name (`from conftest import ...`): the second time it
# takes the folder of the first, and a worker started by `pytest -n N` (or a process a test starts) that of the
# pytest above it ("<pid>:<folder>" of the process that made it); a folder whose maker has ended is never reused
_OWNER, _, _FOLDER = os.environ.get("BLOODSSL_TEST_OUTPUT", "").partition(":")
_CREATED = not (_running(_OWNER) and Path(_FOLDER).is_dir())  # only a folder made here is removed at the end
_OUTPUT = Path(tempfile.mkdtemp(prefix="bloodssl-tests-") if _CREATED else _FOLDER)
os.environ["BLOODSSL_TEST_OUTPUT"] = f"{os.getpid() if _CREATED else _OWNER}:{_OUTPUT}"
os.environ.setdefault("BLOODSSL_REPORTS", str(_OUTPUT / "reports"))
os.environ.setdefault("BLOODSSL_MODELS", str(_OUTPUT / "models"))
os.environ.setdefault("BLOODSSL_EMBEDDINGS", str(_OUTPUT / "embeddings"))
os.environ.setdefault("MPLBACKEND", "Agg")
#: set in each worker of `pytest -n N` (pytest-xdist): "gw0", "gw1", ...
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER and Path(os.environ["BLOODSSL_MODELS"]).name != _WORKER:
    # a worker inherits the folders above from the process that started it: give it its own beneath them, so
    # that two workers never write the same checkpoint or results file
    for name in ("BLOODSSL_REPORTS", "BLOODSSL_MODELS", "BLOODSSL_EMBEDDINGS"):
        os.environ[name] = str(Path(os.environ[name]) / _WORKER)
    # and its own cores: torch (and every notebook kernel it starts) takes a thread per core it may run on, so
    # two workers on the same two cores would run four busy threads on two and slow each other down
    _index, _count = int(_WORKER.removeprefix("gw")), int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    _cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, _cores[_index::_count] if _count <= len(_cores) else [_cores[_index % len(_cores)]])

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bloodssl import data  # noqa: E402


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove the temporary outputs once every test passed (the controller of `pytest -n N`, after its
    workers); a failed run keeps them to look at (a folder bloodssl-tests-* in the temporary directory)."""
    if _CREATED and not _WORKER and exitstatus == 0:
        shutil.rmtree(_OUTPUT, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Group the tests of a worker of `pytest -n N --dist loadgroup --no-loadscope-reorder` (the Makefile's): a
    file's tests run on one worker (they share module fixtures and checkpoints), except the notebook runs, left
    ungrouped (a group each) and handed out first. They are the longest tests (up to three minutes on one core):
    as one file they kept one worker busy for about five minutes after the other had finished. A notebook run
    reads only what earlier runs on its worker wrote (an encoder, checkpoints, other notebooks' results), so what
    it reuses depends on the schedule; each falls back to training its own."""
    if not getattr(config.option, "loadgroup", False):  # set by xdist in its workers
        return
    for item in items:
        if item.get_closest_marker("notebooks") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items.sort(key=lambda item: item.get_closest_marker("notebooks") is None)  # stable: files keep their order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config) -> int:
    """`pytest -n auto`: $PYTEST_XDIST_AUTO_NUM_WORKERS if set, else a worker per CPU this process may
    run on (psutil's count of cores ignores ``taskset``)."""
    return int(os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or len(os.sched_getaffinity(0)))


REAL_FILE = data.default_path()
needs_real_data = pytest.mark.skipif(
    not REAL_FILE.is_file(), reason=f"{REAL_FILE} is absent; run `make data` to test on the real file"
)


def make_arrays(sizes=None, seed: int = 0) -> dict[str, np.ndarray]:
    """Small random arrays in the layout of bloodmnist.npz (every class in every split)."""
    sizes = sizes or {"train": 64, "val": 24, "test": 24}
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in sizes.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % data.N_CLASSES).astype(np.uint8).reshape(n, 1)
    return arrays


def colour_coded(n_per_class: int = 24, seed: int = 0, noise: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is their colour (one bit per RGB channel) plus uniform noise of +- ``noise``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(8), n_per_class)
    colours = np.stack([(labels >> bit) & 1 for bit in range(3)], axis=1) * 160 + 40
    jitter = rng.integers(-noise, noise, (len(labels), 28, 28, 3))
    images = np.clip(colours[:, None, None, :] + jitter, 0, 255).astype(np.uint8)
    order = rng.permutation(len(labels))
    return images[order], labels[order]


@pytest.fixture
def small_npz(tmp_path) -> Path:
    """A small, valid (but not official) .npz file."""
    path = tmp_path / "small.npz"
    np.savez(path, **make_arrays())
    return path


def grey_medmnist(path: Path, flag: str = "pneumoniamnist", sizes=None, seed: int = 0) -> Path:
    """A small synthetic file in medmnist's layout for a grey 2D ``flag``: (N, 28, 28) uint8
    images whose class is their brightness, (N, 1) labels; every class in every split."""
    info = data.dataset_info(flag)
    assert info.n_channels == 1, f"{flag} is not a grey dataset"
    sizes = sizes or {"train": 60, "val": 25, "test": 25}
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, per_class in sizes.items():
        labels = np.repeat(np.arange(info.n_classes), per_class)
        level = 60 + 140 * labels / max(info.n_classes - 1, 1)
        images = np.clip(level[:, None, None] + rng.normal(0, 25, (len(labels), 28, 28)), 0, 255).astype(np.uint8)
        order = rng.permutation(len(labels))
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images[order], labels[order].reshape(-1, 1)
    np.savez(path, **arrays)
    return path
