"""Notebook 07's tables (``bloodssl.studies.architectures``) on hand-made result rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bloodssl import results
from bloodssl.data import Split
from bloodssl.studies import architectures as study


def accuracy_rows(model: str, augment: str, seed: int, value: float, tta: str = "none", **params) -> list[dict]:
    return results.rows({"accuracy": value}, method="supervised", model=model, label_fraction=1.0, n_labels=100,
                        seed=seed, profile="full", split="test", wall_seconds=1.0,
                        params={"augment": augment, "tta": tta, **params})  # fmt: skip


def test_the_robust_recipes_clean_cost_is_its_accuracy_minus_the_plain_recipes_per_seed_without_tta():
    rows = [*accuracy_rows("cnn", study.CELL, 0, 0.95), *accuracy_rows("cnn", study.MEDMNISTC, 0, 0.94),
            *accuracy_rows("cnn", study.CELL, 1, 0.96), *accuracy_rows("cnn", study.MEDMNISTC, 1, 0.97),
            *accuracy_rows("cnn", study.MEDMNISTC, 0, 0.99, tta="dihedral"),  # TTA is not the comparison
            *accuracy_rows("cnn", study.MEDMNISTC, 0, 0.99, epochs=20),  # a long schedule has no twin
            *accuracy_rows("small_cnn", study.CELL, 0, 0.90)]  # no robust twin: no change  # fmt: skip
    changes = results.frame(study.accuracy_change(rows))
    assert list(changes["metric"].unique()) == ["accuracy_change"]
    assert changes.set_index("seed")["value"].to_dict() == pytest.approx({0: -0.01, 1: 0.01})
    assert set(changes["model"]) == {"cnn"}
    assert all(results.expand_params(changes)["augment"] == study.MEDMNISTC)


def test_without_both_recipes_there_is_no_change_to_report():
    assert study.accuracy_change(accuracy_rows("cnn", study.CELL, 0, 0.95)) == []


def test_the_ablation_table_puts_clean_tta_corrupted_and_speed_side_by_side_per_recipe():
    rows = []
    for seed, (plain, mixup) in enumerate([(0.95, 0.93), (0.97, 0.95)]):
        rows += accuracy_rows("small_cnn", study.CELL, seed, plain) + accuracy_rows("small_cnn", "mixup", seed, mixup)
        rows += accuracy_rows("small_cnn", "mixup", seed, mixup + 0.01, tta="dihedral")
        rows += results.rows({"mean_corrupted_accuracy": 0.8 + seed / 10}, method="supervised", model="small_cnn",
                             label_fraction=1.0, n_labels=100, seed=seed, profile="full", split=study.CORRUPTED,
                             wall_seconds=1.0, params={"augment": "mixup", "severity": 3})  # fmt: skip
    rows += accuracy_rows("cnn", study.CELL, 0, 0.99)  # another model: not in the table
    rows += accuracy_rows("small_cnn", "mixup", 0, 0.99, epochs=20)  # a long schedule: not the ablation's
    for seed in (0, 1):  # training speed is written beside every TTA's evaluation; the table counts one
        for tta in ("none", "dihedral"):
            rows += results.rows({"train_images_per_second": 100.0 * (seed + 1)}, method="supervised",
                                 model="small_cnn", label_fraction=1.0, n_labels=100, seed=seed, profile="full",
                                 split="train", wall_seconds=1.0, params={"augment": "mixup", "tta": tta})  # fmt: skip
    table = study.ablation_table(results.frame(rows), ["small_cnn"]).set_index("augment")
    assert list(table.index) == [study.CELL, "mixup"]
    assert table.loc["mixup", "clean"] == pytest.approx(0.94)
    assert table.loc["mixup", "clean_tta"] == pytest.approx(0.95)
    assert table.loc["mixup", "corrupted"] == pytest.approx(0.85)
    assert table.loc["mixup", "clean_std"] == pytest.approx(0.01414, abs=1e-4)
    assert table.loc[study.CELL, ["clean_tta", "corrupted"]].isna().all()
    assert table.loc["mixup", ["train_images_per_second", "train_images_per_second_std"]].tolist() == pytest.approx(
        [150.0, 70.71], abs=0.01
    )


def test_every_recipe_of_a_plan_is_trained_and_the_medmnistc_one_needs_its_copy():
    long = study.Recipe("cnn_se", study.MEDMNISTC, 20)
    plan = study.Plan(("cnn",), ("cnn", "small_cnn"), 1, 10, 0.1, robust_models=("cnn",), long_recipes=(long,),
                      ablation_models=("small_cnn",), augmentations=("none", "mixup"))  # fmt: skip
    Recipe = study.Recipe
    assert plan.recipes() == [Recipe("cnn"), Recipe("small_cnn"), Recipe("cnn", study.MEDMNISTC),
                              Recipe("cnn_se", study.MEDMNISTC, 20), Recipe("small_cnn", "none"),
                              Recipe("small_cnn", "mixup")]  # fmt: skip
    assert plan.settings(Recipe("cnn_se", study.MEDMNISTC, 20)) == {"augment": study.MEDMNISTC, "epochs": 20}
    assert Recipe("cnn_se", study.MEDMNISTC, 20).name == f"{study.MEDMNISTC}, 20 epochs"
    with pytest.raises(ValueError, match="pass medmnistc_copy"):
        study.trained({}, plan, Recipe("cnn", study.MEDMNISTC), 0)
    assert plan.needs_medmnistc() and not study.Plan(("cnn",), ("cnn",), 1, 10, 0.1).needs_medmnistc()
    # probabilities only where calibration and the AUC read them: test, no TTA, notebook 01's or the MedMNIST-C recipe
    assert [plan.keeps_probabilities(recipe, "none", "test") for recipe in plan.recipes()] == [True] * 4 + [False] * 2
    assert not any(plan.keeps_probabilities(recipe, "none", "val") for recipe in plan.recipes())
    with_tta = study.Plan(("cnn",), ("cnn",), 1, 10, 0.1, ttas=("none", "dihedral"))
    assert [with_tta.keeps_probabilities(Recipe("cnn"), tta, "test") for tta in with_tta.ttas] == [True, False]
    with pytest.raises(ValueError, match="have no epochs"):
        study.Plan(("cnn",), ("cnn",), 1, 10, 0.1, long_recipes=(Recipe("cnn_se"),))


def test_the_deduplicated_test_split_is_row_numbers_kept_as_the_plan_keeps_the_test_split():
    # break: keep the AUC of a labels-only network, store the subset as a copy, or read another TTA's test
    # probabilities -> the asserts below fail
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 5)
    proba = {tta: {"test": rng.dirichlet(np.ones(8), len(labels)).astype(np.float32)} for tta in ("none", "dihedral")}
    test = Split("test", np.zeros((len(labels), 28, 28, 3), np.uint8), labels)
    splits = {"train": Split("train", np.zeros((40, 28, 28, 3), np.uint8), labels)}
    keys = study.run_keys("cnn", splits, "full", seed=0)
    for ttas, recipe, labels_only in ((("none",), study.Recipe("cnn"), False),
                                      (("none",), study.Recipe("cnn", "mixup"), True),
                                      (("none", "dihedral"), study.Recipe("cnn"), True)):  # fmt: skip
        plan = study.Plan(("cnn",), ("cnn",), 1, 10, 0.1, ttas=ttas, max_distance=2)
        rows, [kept] = study.deduplicated(recipe, proba, test, np.array([1, 7]), plan, keys, list("abcdefgh"))
        assert ("auc" in {row["metric"] for row in rows}) is not labels_only
        assert kept.split == study.DEDUPLICATED and len(kept.y_true) == 38 and len(kept.whole.y_true) == 40
        assert kept.rows.tolist() == [0, *range(2, 7), *range(8, 40)]
        assert json.loads(kept.keys["params"]) == {**plan.settings(recipe), "tta": ttas[-1], "max_distance": 2,
                                                   "left_out": 2}  # fmt: skip
        expected = np.eye(8)[proba[ttas[-1]]["test"].argmax(axis=1)] if labels_only else proba[ttas[-1]]["test"]
        assert np.array_equal(kept.proba, expected[kept.rows])
        assert {row["n_labels"] for row in rows} == {40}


def test_the_fastest_architecture_within_half_a_validation_point_of_the_best_is_named():
    rows = []
    for model, val, test, speed in [("cnn", 0.970, 0.965, 2000), ("small_cnn", 0.966, 0.950, 5000),
                                    ("basic_cnn", 0.960, 0.990, 9000)]:  # fmt: skip
        for split, value in (("val", val), ("test", test)):
            rows += results.rows({"accuracy": value}, method="supervised", model=model, label_fraction=1.0,
                                 n_labels=100, seed=0, profile="full", split=split, wall_seconds=1.0,
                                 params={"augment": study.CELL, "tta": "none"})  # fmt: skip
        rows += results.rows({"inference_images_per_second": speed, "parameters": 10, "mflops_per_image": 1.0},
                             method="supervised", model=model, label_fraction=1.0, n_labels=100, seed=0,
                             profile="full", split="test", wall_seconds=1.0, params={"batch_size": 64})  # fmt: skip
    rows += accuracy_rows("cnn", "mixup", 0, 0.999)  # another recipe: not an architecture's score
    costs = study.accuracy_and_cost(results.frame(rows))
    assert list(costs["model"]) == ["cnn", "small_cnn", "basic_cnn"]  # by validation, not test
    assert costs.set_index("model").loc["cnn", "accuracy"] == pytest.approx(0.965)
    fastest = study.fastest_within(costs, points=0.5)
    assert fastest["model"] == "small_cnn"  # basic_cnn is faster and better on test, but 1 val point behind
    assert study.fastest_within(costs, points=0.1)["model"] == "cnn"


def test_an_architecture_at_another_learning_rate_says_so_in_its_settings():
    plan = study.Plan(("cnn",), ("cnn", "basic_cnn"), 1, 10, 0.1, learning_rates=(("basic_cnn", 0.02),))
    assert plan.settings(study.Recipe("basic_cnn")) == {"augment": study.CELL, "lr": 0.02}
    assert plan.settings(study.Recipe("cnn", "mixup")) == {"augment": "mixup"}


def test_recipe_names_add_the_epochs_of_a_long_schedule_and_leave_costs_unnamed():
    rows = [
        *accuracy_rows("cnn", study.CELL, 0, 0.9),
        *accuracy_rows("cnn_se", study.MEDMNISTC, 0, 0.9, epochs=20),
        *results.rows(
            {"parameters": 10},
            method="supervised",
            model="cnn",
            label_fraction=1.0,
            n_labels=100,
            seed=0,
            profile="full",
            split="test",
            wall_seconds=1.0,
            params={"batch_size": 64},
        ),
    ]
    names = study.recipe_names(results.expand_params(results.frame(rows)))
    assert names.iloc[:2].tolist() == [study.CELL, f"{study.MEDMNISTC}, 20 epochs"] and names.iloc[2] != names.iloc[2]


def test_the_long_schedule_of_every_seed_is_scored_as_one_averaged_model():
    # break: average other recipes' networks, or score one seed as an ensemble -> the values below differ
    plan = study.Plan(
        ("cnn",), ("cnn",), 2, 10, 0.1, ttas=("none",), long_recipes=(study.Recipe("cnn", study.CELL, 9),)
    )
    labels = np.array([0, 1, 1, 0])
    splits = {name: Split(name, np.zeros((4, 28, 28, 3), np.uint8), labels) for name in ("val", "test")}
    long, short = plan.long_recipes[0], study.Recipe("cnn")
    proba = {0: np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.4, 0.6]]),
             1: np.array([[0.7, 0.3], [0.2, 0.8], [0.2, 0.8], [0.8, 0.2]])}  # fmt: skip
    proba_of = {(long, s): {"none": {"val": p, "test": p}} for s, p in proba.items()}
    proba_of[(short, 0)] = {"none": {"val": 1 - proba[0], "test": 1 - proba[0]}}

    class Fitted:
        fit_seconds_ = 30.0

    trained = {key: Fitted() for key in proba_of}
    keys = dict(method="supervised", model="cnn", label_fraction=1.0, n_labels=4, profile="full")
    rows, saved = study.ensembled(long, proba_of, trained, splits, plan, keys, ["a", "b"])
    accuracy = {row["split"]: row for row in rows if row["metric"] == "accuracy"}
    assert accuracy["test"]["value"] == 1.0 and accuracy["test"]["seed"] == 0  # seed 0 alone: 0.5
    assert accuracy["test"]["wall_seconds"] == 60.0
    assert json.loads(accuracy["test"]["params"]) == {"augment": "cell", "epochs": 9, "ensemble": 2, "tta": "none"}
    assert np.allclose(saved[1].proba, (proba[0] + proba[1]) / 2)  # test: probabilities, val: labels only
    assert np.array_equal(saved[0].proba, np.eye(2)[((proba[0] + proba[1]) / 2).argmax(1)])
    assert {row["split"] for row in rows if row["metric"] == "auc"} == {"test"}
    assert study.ensembled(short, proba_of, trained, splits, plan, keys, ["a", "b"]) == ([], [])
    names = study.recipe_names(results.expand_params(results.frame(rows)))
    assert set(names) == {"cell, 9 epochs, ensemble of 2"}
