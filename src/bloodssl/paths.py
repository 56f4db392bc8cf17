"""Where the project keeps its data, checkpoints and reports.

The root is the repository (``make setup`` installs the package editable), or
``$BLOODSSL_ROOT`` when set, so a notebook run from any folder finds the same files.
``$BLOODSSL_REPORTS`` and ``$BLOODSSL_MODELS`` move the outputs (the tests send their
smoke runs to a temporary folder so they never touch the committed reports). Only the
``default`` profile publishes to ``reports/``; every other profile writes to
``reports/<profile>/`` (``reports_for``), so a smoke run never replaces a published number.
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


def reports_for(profile: str) -> Path:
    """Where a run of ``profile`` writes its executed notebooks, HTML, figures and results:
    ``reports/`` for the published (default) profile, ``reports/<profile>/`` for the others."""
    return REPORTS if profile == PUBLISHED_PROFILE else REPORTS / profile
