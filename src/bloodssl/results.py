"""One tidy results table per notebook: ``reports/results/<notebook stem>.csv``.

Each row is one measurement. Plots, tables and the README read these files; a JSON of
the run's configuration sits beside each CSV. Writes are atomic, so an interrupted run
never leaves half a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from bloodssl import paths
from bloodssl.core.io import atomic_path

COLUMNS = (
    "method", "model", "label_fraction", "n_labels", "seed", "split",
    "metric", "value", "wall_seconds", "profile",
)  # fmt: skip


def rows(metrics: Mapping[str, float], **keys) -> list[dict]:
    """One row per metric, each carrying the same ``keys`` (method, model, seed, ...)."""
    missing = set(COLUMNS) - {"metric", "value"} - set(keys)
    if missing:
        raise ValueError(f"rows() needs {', '.join(sorted(missing))} as keyword arguments")
    return [{**keys, "metric": name, "value": float(value)} for name, value in metrics.items()]


def frame(records: Iterable[Mapping]) -> pd.DataFrame:
    """Records as a table with exactly the shared columns, in order."""
    table = pd.DataFrame(list(records))
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
    return pd.read_csv(path)


def summarize(
    table: pd.DataFrame,
    by: Iterable[str] = ("method", "model", "label_fraction", "split", "metric"),
) -> pd.DataFrame:
    """Mean, standard deviation and number of seeds of ``value`` per group."""
    grouped = table.groupby(list(by), sort=False)["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def best_on_validation(summary: pd.DataFrame) -> pd.Series:
    """The row of ``summary`` (see ``summarize``) that validation picks: the best mean over
    the most seeds among its ``val`` rows (its ``test`` rows only when it has no ``val``
    row), so the test split never chooses the winner."""
    split = "val" if (summary["split"] == "val").any() else "test"
    return summary[summary["split"] == split].sort_values(["n", "mean"], ascending=False).iloc[0]


def mean_std(summary: pd.DataFrame, scale: float = 100.0, digits: int = 2) -> pd.Series:
    """``mean +- std`` strings (``std`` omitted for a single seed)."""

    def fmt(row) -> str:
        text = f"{row['mean'] * scale:.{digits}f}"
        return text if row["n"] < 2 else f"{text} ± {row['std'] * scale:.{digits}f}"

    return summary.apply(fmt, axis=1)
