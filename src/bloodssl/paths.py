"""Where the project keeps its data, checkpoints and reports.

The root is the repository (``make setup`` installs the package editable), or
``$BLOODSSL_ROOT`` when set, so a notebook run from any folder finds the same files.
``$BLOODSSL_REPORTS`` and ``$BLOODSSL_MODELS`` move the outputs (the tests send their
smoke runs to a temporary folder so they never touch the committed reports). Only the
``default`` profile on BloodMNIST publishes to ``reports/``; every other profile writes to
``reports/<profile>/``, another dataset to a folder of its own (``reports_for``, ``route``),
so a smoke run never replaces a published number.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("BLOODSSL_ROOT", Path(__file__).resolve().parents[2]))
DATA_RAW = ROOT / "data" / "raw"
DATA_PROCESSED = ROOT / "data" / "processed"
MODELS = Path(os.environ.get("BLOODSSL_MODELS", ROOT / "models"))
REPORTS = Path(os.environ.get("BLOODSSL_REPORTS", ROOT / "reports"))
RESULTS = REPORTS / "results"
FIGURES = REPORTS / "figures"
NOTEBOOKS = ROOT / "notebooks"
PUBLISHED_PROFILE = "default"
PUBLISHED_DATASET = "bloodmnist"
#: set by ``reports.execute`` for its kernel: the published reports' root (its $BLOODSSL_REPORTS is a staging folder)
PUBLISHED_ENV = "BLOODSSL_PUBLISHED"


def reports_for(profile: str, dataset: str = PUBLISHED_DATASET, root: Path | None = None) -> Path:
    """Where a run of ``profile`` on ``dataset`` writes its executed notebooks, HTML, figures
    and results: ``reports/`` (or ``root``) for the published ones (default profile, BloodMNIST),
    ``reports/<profile>/`` for another profile, and a ``<dataset>/`` folder below that for
    another dataset."""
    root = REPORTS if root is None else root
    base = root if profile == PUBLISHED_PROFILE else root / profile
    return base if dataset == PUBLISHED_DATASET else base / dataset


def published_results(profile: str, dataset: str = PUBLISHED_DATASET) -> Path:
    """The published results of ``profile`` on ``dataset``, which one notebook reads of the
    others'; also inside a kernel of ``reports.execute``, whose own outputs are staged
    elsewhere until it succeeds (it names the published root in ``$BLOODSSL_PUBLISHED``)."""
    return reports_for(profile, dataset, Path(os.environ.get(PUBLISHED_ENV, REPORTS))) / "results"


def route(profile: str, dataset: str = PUBLISHED_DATASET) -> Path:
    """Send this process's figures, results and predictions to ``reports_for(profile,
    dataset)`` and return that folder. Every notebook calls it first, so that running one by
    hand in Jupyter (its parameters cell says ``profile = "smoke"``) never replaces a
    published number. Where ``$BLOODSSL_REPORTS`` is set (``reports.execute`` points it at
    its staging folder, the tests at a temporary one) the outputs stay where it says."""
    global RESULTS, FIGURES
    if "BLOODSSL_REPORTS" in os.environ:
        return REPORTS
    folder = reports_for(profile, dataset)
    RESULTS, FIGURES = folder / "results", folder / "figures"
    return folder
