"""Notebook 05's tables read the settings and rounds from their columns: the paper's table
by round, equal human labels, the ablations and the cost."""

from __future__ import annotations

import dataclasses

import pandas as pd
from conftest import colour_coded
from test_viz import SIZE, study_table

from bloodssl.data import Split
from bloodssl.studies import ssl_active_learning as study


def test_by_round_has_a_row_per_arm_and_a_column_per_round():
    table = study.by_round(study_table(), plan=SIZE)
    assert list(table.index) == [f"1% · {name}" for name in study.ARM_NAMES.values()]
    assert list(table.columns) == ["start", "round 1", "round 2"]
    assert table.loc["1% · SSL+AL", "round 2"] == "82.00 ± 0.00 (200)"  # accuracy 0.8 + 0.01 r, 120 + 2 x 40 labels
    assert table.loc["1% · SSL only", "round 2"] == "82.00 ± 0.00 (120)"  # pseudo-labels only: no new human label
    assert table.loc["1% · Baseline", "round 1"] == ""  # the baseline has no rounds


def test_equal_labels_compares_each_arm_at_its_last_round_by_human_labels():
    table = study.equal_labels(study_table(), SIZE)
    assert table["human labels"].tolist() == sorted(table["human labels"].tolist())
    row = table[table["arm"] == study.ARM_NAMES["ssl_al"]].iloc[0]
    assert (row["human labels"], row["accuracy (%)"]) == (200, "82.00 ± 0.00")


def test_ablation_varies_one_setting_with_the_others_at_the_main_ones():
    table = study_table()
    budget = study.ablation(table, "budget", SIZE)
    assert list(budget.index) == [40, 80] and budget["human labels"].tolist() == [160, 200]
    strategy = study.ablation(table, "strategy", SIZE)
    assert set(strategy.index) == {"least_confidence", "margin"}


def test_cost_sums_fitting_and_pool_minutes_per_arm():
    table = study_table()
    fit = table[table["metric"] == "n_pseudo"].assign(metric="fit_seconds", value=60.0)
    pool = fit.assign(metric="pool_seconds", value=30.0)
    cost = study.cost(pd.concat([table, fit, pool], ignore_index=True))
    assert list(cost.index) == list(study.ARM_NAMES.values())
    assert cost.loc["Baseline", "fit minutes"] == 2.0  # two seeds, round 0 only, a minute each
    assert cost.loc["SSL+AL", "pool minutes"] == 2 * 0.5 * (3 + 2 + 2 + 2)  # the main loop's 3 rounds, 3 ablations
    assert cost.loc["SSL+AL", "loops"] == 2 * 4


def test_run_trains_one_loop_and_writes_its_rounds(tmp_path, monkeypatch):
    monkeypatch.setattr(study.paths, "MODELS", tmp_path)
    X, y = colour_coded(12, noise=60)
    splits = {"train": Split("train", X, y), "val": Split("val", *colour_coded(3, seed=1, noise=60)),
              "test": Split("test", *colour_coded(3, seed=2, noise=60))}  # fmt: skip
    size = dataclasses.replace(study.PLANS["smoke"], epochs=1, min_epoch_samples=256)  # the loop, not the accuracy
    loop = study.run(splits, arm="ssl_al", fraction=0.25, seed=0, plan=size, stem="t", profile="smoke")
    rows = study.table([loop], "smoke")
    assert set(rows["method"]) == {"ssl_al"} and sorted(rows["round"].unique()) == [0, 1]
    assert rows.loc[rows["round"] == 1, "n_labels"].iloc[0] == 24 + size.budget  # a quarter of 96, then a query
    assert loop.params() == {"strategy": size.strategy, "budget": size.budget, "threshold": size.threshold}
