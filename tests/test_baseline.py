"""Notebook 01's harness: one supervised CNN per (fraction, seed), scored on val and test."""

from __future__ import annotations

import numpy as np
from conftest import colour_coded

from bloodssl import results
from bloodssl.data import Split
from bloodssl.studies import baseline

FAST = dict(epochs=2, batch_size=32, lr=0.05, num_threads=1, min_epoch_samples=256, progress=False, tta="none")


def test_sweep_trains_one_cnn_per_fraction_and_seed_and_keeps_val_and_test_apart():
    X, y = colour_coded(6)
    X_val, y_val = colour_coded(3, seed=1)
    X_test, y_test = colour_coded(3, seed=2)
    splits = {
        "train": Split("train", X, y),
        "val": Split("val", X_val, y_val),
        "test": Split("test", X_test, (y_test + 1) % 8),
    }  # wrong test labels: its accuracy must be low
    runs, table = baseline.sweep(splits, fractions=[0.5, 1.0], seeds=[0, 1], stem="test_baseline", profile="smoke",
                                 class_names=[f"c{i}" for i in range(8)], **FAST)  # fmt: skip
    assert [(r.fraction, r.seed) for r in runs] == [(0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)]
    assert [r.classifier.n_labels_ for r in runs] == [24, 24, 48, 48]  # break: ignore the fraction
    assert list(table.columns) == list(results.COLUMNS)
    accuracy = table[table["metric"] == "accuracy"].pivot_table(index=["label_fraction", "seed"], columns="split",
                                                               values="value")  # fmt: skip
    # break: score the test split for model selection or swap the two -> the wrong labels show up in val
    assert (accuracy["val"] >= 0.6).all() and (accuracy["test"] < accuracy["val"] - 0.4).all()
    assert runs[0].evaluations["test"].per_class["class"].tolist()[:2] == ["c0", "c1"]
    speeds = table[table["metric"].isin(["train_images_per_second", "inference_images_per_second"])]
    assert len(speeds) == 2 * len(runs) and (speeds["value"] > 0).all()
    for run in runs:  # every row of a run carries that run's training time
        rows = table[(table["label_fraction"] == run.fraction) & (table["seed"] == run.seed)]
        assert np.allclose(rows["wall_seconds"], run.classifier.fit_seconds_)
