from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bloodssl import results
from bloodssl.core.evaluate import METRICS, combined_accuracy, evaluate, score, shared_errors

KEYS = dict(method="supervised", model="cnn", label_fraction=1.0, n_labels=100, split="test",
            wall_seconds=1.5, profile="smoke")  # fmt: skip


def test_rows_round_trip_through_the_shared_schema(tmp_path):
    records = results.rows({"accuracy": 0.9, "macro_f1": 0.8}, seed=0, **KEYS)
    records += results.rows({"accuracy": 0.7, "macro_f1": 0.6}, seed=1, **KEYS)
    path = results.save(records, "99_example", config={"epochs": 3}, results_dir=tmp_path)
    table = results.load("99_example", results_dir=tmp_path)
    assert list(table.columns) == list(results.COLUMNS) and len(table) == 4
    assert json.loads((tmp_path / "99_example.json").read_text()) == {"epochs": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["99_example.csv", "99_example.json"], path

    summary = results.summarize(table)
    accuracy = summary[summary["metric"] == "accuracy"].iloc[0]
    assert accuracy["mean"] == pytest.approx(0.8) and accuracy["n"] == 2
    assert accuracy["std"] == pytest.approx(np.std([0.9, 0.7], ddof=1))
    assert results.mean_std(summary).iloc[0] == "80.00 ± 14.14"


def test_rows_need_every_key():
    with pytest.raises(ValueError, match="needs profile, seed"):
        results.rows({"accuracy": 1.0}, **{k: v for k, v in KEYS.items() if k != "profile"})


def test_frame_rejects_missing_columns():
    with pytest.raises(ValueError, match="lack the column.*wall_seconds"):
        results.frame([{c: 0 for c in results.COLUMNS if c != "wall_seconds"}])


def test_no_records_make_an_empty_table_with_the_shared_columns():
    # break: build the empty table from its records alone -> no columns, so a sweep with no jobs fails
    table = results.frame([])
    assert table.empty and list(table.columns) == list(results.COLUMNS)


def test_missing_results_name_the_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run notebooks/42_absent\.ipynb"):
        results.load("42_absent", results_dir=tmp_path)


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    # break: write to the target directly (not to a temporary file renamed on success) -> a half file stays
    results.save(results.rows({"accuracy": 0.5}, seed=0, **KEYS), "99_x", results_dir=tmp_path)
    before = (tmp_path / "99_x.csv").read_text()

    def half_then_fail(self, path, **kwargs):
        Path(path).write_text("method,mod")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        results.save(results.rows({"accuracy": 0.9}, seed=1, **KEYS), "99_x", results_dir=tmp_path)
    assert (tmp_path / "99_x.csv").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["99_x.csv", "99_x.json"] or sorted(
        p.name for p in tmp_path.iterdir()) == ["99_x.csv", "99_x.json"]  # fmt: skip


def test_evaluate_perfect_and_imperfect_predictions():
    y = np.repeat(np.arange(8), 5)
    perfect = evaluate(y, np.eye(8)[y])
    assert perfect.metrics["accuracy"] == 1 and perfect.metrics["macro_f1"] == 1 and perfect.metrics["auc"] == 1
    assert np.array_equal(perfect.confusion, np.diag([5] * 8))
    wrong = np.eye(8)[(y + 1) % 8]
    assert evaluate(y, wrong).metrics["accuracy"] == 0
    assert list(perfect.per_class["class"])[:2] == ["0", "1"]  # no names given: the class indices
    named = evaluate(y, np.eye(8)[y], class_names=[f"c{i}" for i in range(8)])
    assert list(named.per_class["class"])[0] == "c0"
    with pytest.raises(ValueError, match="class_names has 2 names for 8 classes"):
        evaluate(y, np.eye(8)[y], class_names=["a", "b"])


def test_binary_auc_uses_the_positive_class():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.35, 0.65], [0.2, 0.8]])
    assert evaluate(y, proba).metrics["auc"] == 1.0


def test_auc_is_nan_when_a_class_is_absent():
    y = np.array([0, 1, 1, 0])
    proba = np.full((4, 8), 1 / 8)
    assert np.isnan(evaluate(y, proba).metrics["auc"])


def test_one_metric_alone_is_the_one_evaluate_reports_and_an_unknown_one_is_named():
    rng = np.random.default_rng(0)
    y, proba = np.repeat(np.arange(4), 10), rng.dirichlet(np.ones(4), size=40)
    metrics = evaluate(y, proba).metrics
    assert set(metrics) == set(METRICS)
    assert {name: score(name, y, proba) for name in METRICS} == metrics
    assert 0 < metrics["accuracy"] < 1 and metrics["macro_f1"] != metrics["accuracy"]  # a random, imperfect guess
    with pytest.raises(ValueError, match="unknown metric 'precision'; choose one of accuracy"):
        score("precision", y, proba)


def test_evaluate_rejects_misshaped_probabilities():
    with pytest.raises(ValueError, match=r"proba must have shape \(3, n_classes\)"):
        evaluate(np.array([0, 1, 2]), np.ones((2, 8)))


def one_hot(predictions: list[int]) -> np.ndarray:
    return np.eye(8)[predictions]


def test_shared_errors_counts_the_row_classifiers_errors_that_the_column_one_repeats():
    y = np.array([0, 1, 2, 3])
    proba = {"a": one_hot([1, 1, 2, 3]), "b": one_hot([0, 2, 2, 3]), "d": one_hot([1, 1, 2, 0]), "perfect": one_hot(y)}
    table = shared_errors(proba, y)
    assert table.loc["a", "d"] == 1.0 and table.loc["d", "a"] == 0.5 and table.loc["a", "b"] == 0.0
    assert table.loc["d", "d"] == 1.0 and table.loc["perfect"].isna().all()


def test_combined_accuracy_separates_the_ensemble_from_the_any_right_ceiling():
    y = np.array([0, 1, 2, 3])
    each_wrong_once = {"a": one_hot([1, 1, 2, 3]), "b": one_hot([0, 2, 2, 3]), "c": one_hot([0, 1, 3, 3])}
    assert combined_accuracy(each_wrong_once, y) == {"best_single": 0.75, "ensemble": 1.0, "any_right": 1.0}
    same_mistake = {"a": one_hot([1, 1, 2, 3]), "d": one_hot([1, 1, 2, 3])}
    assert combined_accuracy(same_mistake, y) == {"best_single": 0.75, "ensemble": 0.75, "any_right": 0.75}


def test_error_overlap_rejects_misshaped_or_missing_probabilities():
    with pytest.raises(ValueError, match=r"proba\['a'\] must have shape \(3, n_classes\)"):
        shared_errors({"a": np.ones((2, 8))}, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="no classifier given"):
        combined_accuracy({}, np.array([0, 1, 2]))


def test_best_on_validation_ignores_the_test_split_and_prefers_more_seeds():
    def row(method, split, mean, n):
        return dict(method=method, model="cnn", split=split, mean=mean, std=0.0, n=n)

    summary = pd.DataFrame([row("a", "val", 0.90, 3), row("a", "test", 0.99, 3), row("b", "val", 0.92, 3),
                            row("b", "test", 0.80, 3), row("c", "val", 0.97, 1)])  # fmt: skip
    assert results.best_on_validation(summary)["method"] == "b"
    test_only = summary[summary["split"] == "test"]
    assert results.best_on_validation(test_only)["method"] == "a"
    # an error (a calibration error): the lowest is the best
    assert results.best_on_validation(summary, lower_is_better=True)["method"] == "a"
    assert results.best_on_validation(test_only, lower_is_better=True)["method"] == "b"
