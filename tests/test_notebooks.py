"""Every numbered notebook runs end to end with profile="smoke" and writes its results
in the shared schema (nbval, run by `make test`, additionally executes them in place)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import grey_medmnist, needs_real_data

from bloodssl import paths, reports, results

NOTEBOOKS = reports.notebooks()


def test_every_notebook_has_one_parameters_cell_with_profile_and_seed():
    assert NOTEBOOKS, "no notebooks found"
    for notebook in NOTEBOOKS:
        cells = json.loads(notebook.read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{notebook.name} needs exactly one cell tagged 'parameters'"
        source = "".join(tagged[0]["source"])
        assert "profile =" in source and "seed" in source, notebook.name


@needs_real_data
@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_smoke_run_writes_tidy_results(notebook, tmp_path):
    reports.execute(notebook, "smoke", reports_dir=tmp_path)
    assert (tmp_path / f"{notebook.stem}.html").stat().st_size > 10_000
    table = pd.read_csv(paths.RESULTS / f"{notebook.stem}.csv")
    assert list(table.columns) == list(results.COLUMNS)
    assert set(table["profile"]) == {"smoke"}
    assert table["value"].notna().any()


@pytest.mark.notebooks
def test_the_baseline_notebook_runs_on_another_medmnist_dataset_with_grey_images(tmp_path):
    notebook = paths.NOTEBOOKS / "01_data_and_baseline.ipynb"
    npz = grey_medmnist(tmp_path / "pneumoniamnist.npz")
    reports.execute(notebook, "smoke", reports_dir=tmp_path, dataset="pneumoniamnist", data_file=str(npz))
    table = pd.read_csv(paths.RESULTS / f"{notebook.stem}.csv")
    config = json.loads((paths.RESULTS / f"{notebook.stem}.json").read_text())
    assert config["dataset"] == "pneumoniamnist" and config["n_classes"] is None  # inferred from y: 2
    accuracy = table[(table["split"] == "test") & (table["metric"] == "accuracy")]["value"]
    assert len(accuracy) == 1 and accuracy.iloc[0] > 0.5  # above chance for two classes
    assert "pneumonia" in (tmp_path / f"{notebook.stem}.html").read_text()
