"""Convert results CSVs written before the ``round`` and ``params`` columns (run once).

Old files packed settings and rounds into names: notebook 03's ``label_propagation_knn``,
notebook 04's ``threshold-0.5``, ``fixmatch-3000`` and ``round1_accuracy``, notebook 05's
``ssl_al round=3 strategy=least_confidence budget=40 threshold=0.99``. This script moves
them into the ``method``, ``round`` and ``params`` columns the notebooks now write, so the
committed runs stand without a rerun. Every value is kept; a file already converted is
left alone.

    python scripts/convert_results.py [reports/results]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

from bloodssl import results
from bloodssl.core.io import atomic_path

# notebook 04's FixMatch runs at the default profile took 1000 steps unless named otherwise
FIXMATCH_STEPS = 1000
ROUND_METRICS = {"accuracy": ("test", "accuracy"), "macro_f1": ("test", "macro_f1"),
                 "pseudo_labels": ("train", "n_pseudo"), "pseudo_label_accuracy": ("train", "pseudo_accuracy"),
                 "val_accuracy": ("val", "accuracy")}  # fmt: skip


def number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def method_and_params(name: str) -> tuple[str, dict, float]:
    """The method, its settings and its round (NaN: a final result) of an old method name."""
    if match := re.fullmatch(r"label_(propagation|spreading)_(rbf|knn)", name):
        return f"label_{match[1]}", {"kernel": match[2]}, float("nan")
    if match := re.fullmatch(r"threshold-([\d.]+)", name):
        return "self_training", {"selection": "threshold", "threshold": float(match[1])}, float("nan")
    if name in ("per_class", "top_k"):
        return "self_training", {"selection": name}, float("nan")
    if name == "fixmatch":
        return "fixmatch", {"steps": FIXMATCH_STEPS}, float("nan")
    if match := re.fullmatch(r"fixmatch-(\d+)", name):
        return "fixmatch", {"steps": int(match[1])}, float("nan")
    if name == "fixmatch-plain":
        return "fixmatch", {"steps": FIXMATCH_STEPS, "teacher": "online", "align": False}, float("nan")
    if " round=" in name:  # notebook 05
        arm, *parts = name.split(" ")
        settings = dict(part.split("=", 1) for part in parts)
        round_ = int(settings.pop("round"))
        params = {k: v if k == "strategy" else number(v) for k, v in settings.items()}
        if "threshold" in params:
            params["threshold"] = float(params["threshold"])
        return arm, params, round_
    return name, {}, float("nan")


def convert(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (old schema) in the current one."""
    out = []
    for row in table.to_dict("records"):
        method, params, round_ = method_and_params(row["method"])
        row.update(method=method, params=results.params_json(params), round=round_)
        if match := re.fullmatch(r"round(\d+)_(.+)", row["metric"]):
            row["round"] = int(match[1])
            row["split"], row["metric"] = ROUND_METRICS[match[2]]
        out.append(row)
    return results.frame(out)


def main(folder: Path) -> None:
    for path in sorted(folder.glob("[0-9][0-9]_*.csv")):
        table = pd.read_csv(path)
        if {"round", "params"} <= set(table.columns):
            print(f"{path}: already converted")
            continue
        new = convert(table)
        with atomic_path(path) as tmp:
            new.to_csv(tmp, index=False)
        print(f"{path}: {len(new)} rows converted")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else results.paths.RESULTS)
