"""One tidy results table per notebook: ``reports/results/<notebook stem>.csv``.

Each row is one measurement. A run's settings are columns, never part of a name:
``method`` is a registered method (or an arm, an embedding...), ``params`` the JSON of the
settings that tell its runs apart in the notebook (``{"steps": 3000}``), and ``round`` the
stage of a multi-round method the row measures (empty for a run's final result). Plots,
tables and the README read these files; a JSON of the run's configuration sits beside each
CSV. Writes are atomic, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bloodssl import paths, predictions
from bloodssl.core.io import atomic_path

COLUMNS = (
    "method", "model", "label_fraction", "n_labels", "seed", "split",
    "metric", "value", "wall_seconds", "profile", "round", "params",
)  # fmt: skip
#: columns a row may leave out: a final result has no round, a run with the notebook's
#: default settings has no params
OPTIONAL = {"round": float("nan"), "params": "{}"}


def params_json(params: Mapping[str, Any] | None) -> str:
    """The ``params`` cell of a row: the settings as compact JSON with sorted keys."""
    return json.dumps(dict(params or {}), sort_keys=True, separators=(",", ":"), default=str)


def params_text(text: str) -> str:
    """A ``params`` cell for people: ``steps=3000, teacher=online`` ('' for none)."""
    return ", ".join(f"{key}={value}" for key, value in json.loads(text).items())


def display_name(method: str, params: Mapping[str, Any] | str | None = None) -> str:
    """A run's name for tables and plots: ``label_propagation (kernel=knn)``. Only for
    people: code selects runs by the ``method`` and ``params`` columns, never by this."""
    text = params_text(params if isinstance(params, str) else params_json(params))
    return f"{method} ({text})" if text else method


def named(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``method`` replaced by ``display_name(method, params)``, for display."""
    return table.assign(method=[display_name(m, p) for m, p in zip(table["method"], table["params"], strict=True)])


def expand_params(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with one column per key of its ``params`` (NaN where a row lacks it)."""
    settings = pd.DataFrame([json.loads(text) for text in table["params"]], index=table.index)
    return table.join(settings.drop(columns=[c for c in settings.columns if c in table.columns]))


def rows(metrics: Mapping[str, float], **keys) -> list[dict]:
    """One row per metric, each carrying the same ``keys`` (method, model, seed, ...)."""
    missing = set(COLUMNS) - {"metric", "value"} - set(OPTIONAL) - set(keys)
    if missing:
        raise ValueError(f"rows() needs {', '.join(sorted(missing))} as keyword arguments")
    keys = {**OPTIONAL, **keys, "params": params_json(keys["params"]) if "params" in keys else OPTIONAL["params"]}
    return [{**keys, "metric": name, "value": float(value)} for name, value in metrics.items()]


def frame(records: Iterable[Mapping]) -> pd.DataFrame:
    """Records as a table with exactly the shared columns, in order (no records: an empty one)."""
    table = pd.DataFrame(list(records))
    if table.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    for column, default in OPTIONAL.items():
        table[column] = table[column].fillna(default) if column in table else default
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"results lack the column(s) {', '.join(missing)}; every row needs {COLUMNS}")
    return table.loc[:, list(COLUMNS)]


def save(
    records: Iterable[Mapping] | pd.DataFrame,
    stem: str,
    config: Mapping | None = None,
    results_dir: Path | None = None,
) -> Path:
    """Write ``<stem>.csv`` (and ``<stem>.json`` with ``config``) atomically; return the CSV."""
    results_dir = Path(results_dir or paths.RESULTS)
    table = frame(records.to_dict("records") if isinstance(records, pd.DataFrame) else records)
    target = results_dir / f"{stem}.csv"
    with atomic_path(target) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(results_dir / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(dict(config or {}), indent=2, sort_keys=True, default=str) + "\n")
    return target


def load(stem: str, results_dir: Path | None = None) -> pd.DataFrame:
    """Read ``<stem>.csv``; a missing file says which notebook writes it."""
    path = Path(results_dir or paths.RESULTS) / f"{stem}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run notebooks/{stem}.ipynb (or `make reports`).")
    return read(path)


def read(path: Path) -> pd.DataFrame:
    """A results CSV with ``params`` as text ('{}' for none) and ``round`` as numbers."""
    table = pd.read_csv(path, dtype={"params": str})
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)}; it predates the current schema: "
                         "convert it with `python scripts/convert_results.py`")  # fmt: skip
    return table.fillna({"params": OPTIONAL["params"]})


def final(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's result: those without a round, and for runs measured round by
    round only, the rows of their last round."""
    keys = ["method", "model", "label_fraction", "profile", "params", "seed"]
    last = table.groupby(keys, sort=False, dropna=False)["round"].transform("max")
    has_final = table["round"].isna().groupby([table[k] for k in keys], sort=False, dropna=False).transform("any")
    return table[table["round"].isna() | (~has_final & (table["round"] == last))]


def summarize(
    table: pd.DataFrame,
    by: Iterable[str] = ("method", "model", "label_fraction", "params", "split", "metric"),
) -> pd.DataFrame:
    """Mean, standard deviation and number of seeds of ``value`` per group."""
    grouped = table.groupby(list(by), sort=False, dropna=False)["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def best_on_validation(summary: pd.DataFrame, lower_is_better: bool = False) -> pd.Series:
    """The row of ``summary`` (see ``summarize``) that validation picks: the best mean (the
    lowest with ``lower_is_better``, an error) over the most seeds among its ``val`` rows (its
    ``test`` rows only when it has no ``val`` row, and its only split's for a measurement such
    as a throughput), so the test split never chooses the winner."""
    present = set(summary["split"])
    split = next((s for s in ("val", "test") if s in present), summary["split"].iloc[0])
    ranked = summary[summary["split"] == split].assign(score=lambda t: -t["mean"] if lower_is_better else t["mean"])
    return summary.loc[ranked.sort_values(["n", "score"], ascending=False).index[0]]


def mean_std(summary: pd.DataFrame, scale: float = 100.0, digits: int = 2) -> pd.Series:
    """``mean +- std`` strings (``std`` omitted for a single seed)."""

    def fmt(row) -> str:
        text = f"{row['mean'] * scale:.{digits}f}"
        return text if row["n"] < 2 else f"{text} ± {row['std'] * scale:.{digits}f}"

    return summary.apply(fmt, axis=1)


def rescore_all(results_dir: Path | None = None) -> pd.DataFrame:
    """``predictions.rescore`` over every results table in ``results_dir`` (default
    ``reports/results/``), with a ``stem`` column; tables without a predictions file get
    NaN ``rescored`` (they were written before predictions were kept)."""
    results_dir = Path(results_dir or paths.RESULTS)
    tables = []
    for csv in sorted(results_dir.glob("*.csv")):
        if "metric" not in pd.read_csv(csv, nrows=0).columns:  # timings.csv and other non-result tables
            continue
        table = read(csv)
        stored = results_dir / f"{csv.stem}{predictions.SUFFIX}"
        found = predictions.load(csv.stem, results_dir) if stored.is_file() else []
        tables.append(predictions.rescore(table, found).assign(stem=csv.stem))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def rescored(csv: Path) -> pd.DataFrame:
    """The results table ``csv`` with every metric that ``predictions.rescore`` recomputes
    replaced by the value its saved prediction gives; a test metric without a prediction
    becomes NaN (validation scores a notebook kept without one, such as a training run's
    epoch selection, stay as stored)."""
    table = read(csv)
    stored = csv.with_name(f"{csv.stem}{predictions.SUFFIX}")
    found = predictions.load(csv.stem, csv.parent) if stored.is_file() else []
    checked = predictions.rescore(table, found)
    rows = table["metric"].isin(predictions.RESCORED)
    value = checked["rescored"].to_numpy(dtype=float)
    keep = np.isnan(value) & (checked["split"] != "test").to_numpy()
    table.loc[rows, "value"] = np.where(keep, table.loc[rows, "value"].to_numpy(), value)
    return table


def main(argv: list[str] | None = None) -> int:
    """``python -m bloodssl.results rescore [DIR ...]``: recompute every accuracy, macro-F1,
    balanced accuracy and AUC from the saved predictions and list any difference, then (for the
    default folder) render the README's tables from the recomputed values and list every line
    that changes; exit 1 if anything differs."""
    import argparse

    from bloodssl import readme  # the README's tables are built from this module's tables

    parser = argparse.ArgumentParser(prog="python -m bloodssl.results", description=main.__doc__)
    parser.add_argument("command", choices=["rescore"])
    parser.add_argument("dirs", nargs="*", type=Path, help="results folders (default reports/results)")
    args = parser.parse_args(argv)
    failed = False
    for folder in args.dirs or [paths.RESULTS]:
        checked = rescore_all(folder)
        if checked.empty:
            print(f"{folder}: no results tables")
            continue
        missing = checked["rescored"].isna() & ~checked["stored"].isna()
        wrong = ~checked["same"] & ~missing
        for stem, rows in checked.groupby("stem", sort=True):
            same, absent, different = rows["same"].sum(), missing[rows.index].sum(), wrong[rows.index].sum()
            print(f"{folder}/{stem}.csv: {same} of {len(rows)} metrics reproduced from the predictions, "
                  f"{absent} without predictions, {different} different "
                  f"(largest difference {rows['difference'].max():.2g})")  # fmt: skip
        if wrong.any():
            failed = True
            print(checked[wrong].drop(columns=["same"]).to_string(index=False))
    if not args.dirs:
        differences = readme.rescored_differences()
        print(
            f"README.md: {len(differences)} line(s) of the generated tables differ when every metric is "
            "recomputed from the predictions" + ("" if differences else " (every printed digit reproduced)")
        )
        print("\n".join(differences))
        failed |= bool(differences)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
