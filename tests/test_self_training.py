"""SelfTrainingCNN on a colour-coded task whose answer is known: the class is the colour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import colour_coded

from bloodssl.core.prediction import cached_proba
from bloodssl.data import Split
from bloodssl.data.augment import StrongAugment
from bloodssl.methods import get_method, pseudo_labels, supervised
from bloodssl.methods.self_training import SelfTrainingCNN
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.profiles import PROFILES
from bloodssl.studies import pseudo_labelling

FAST = dict(epochs=3, batch_size=32, lr=0.02, progress=False, tta="none", num_threads=1, min_epoch_samples=128)


@pytest.fixture(scope="module")
def task():
    X, y = colour_coded(12)
    X_val, y_val = colour_coded(4, seed=1)
    y_masked = np.full_like(y, -1)
    for label in range(8):
        y_masked[np.flatnonzero(y == label)[:2]] = label  # two labels per class
    return X, y, y_masked, (X_val, y_val)


def fit(task, **params) -> SelfTrainingCNN:
    X, y, y_masked, eval_set = task
    # warm rounds and no strong views: colour jitter would erase this task's signal
    params = {
        "rounds": 2,
        "round_epochs": 1,
        "warm_start": True,
        "round_lr": 0.02,
        "strong_views": 0,
        "top_k": 4,
        "threshold": 0.5,
        "progress": False,
        **params,
    }
    return SelfTrainingCNN(CNNClassifier(**FAST), **params).fit(X, y_masked, eval_set=eval_set, y_true=y)


@pytest.mark.parametrize("selection", pseudo_labels.SELECTIONS)
def test_each_selection_pseudo_labels_the_colour_task_correctly(task, selection):
    X, y, y_masked, (X_val, y_val) = task
    clf = fit(task, selection=selection, precision=0.9)
    pseudo_labelled = (y_masked < 0) & (clf.transduction_ >= 0)
    assert pseudo_labelled.sum() >= 16
    assert (clf.transduction_[pseudo_labelled] == y[pseudo_labelled]).mean() >= 0.9
    assert (clf.transduction_[y_masked >= 0] == y_masked[y_masked >= 0]).all()
    assert clf.score(X_val, y_val) >= 0.9
    assert [r["round"] for r in clf.rounds_] == [0, 1, 2] and clf.n_iter_ == 2


def test_round_log_counts_pseudo_labels_and_their_accuracy(task):
    X, y, y_masked, _ = task
    clf = fit(task, selection="threshold", strong_views=2)
    first, last = clf.rounds_[0], clf.rounds_[-1]
    assert first["stage"] == "supervised" and first["n_pseudo"] == 0 and first["n_labels"] == 16
    chosen = (y_masked < 0) & (clf.transduction_ >= 0)
    assert last["n_pseudo"] == chosen.sum() and last["n_labels"] == 16 + chosen.sum()
    assert last["pseudo_accuracy"] == pytest.approx((clf.transduction_[chosen] == y[chosen]).mean())
    assert sum(last["class_counts"]) == last["n_labels"]
    repeats = math.ceil(0.1 * 2 * last["n_pseudo"] / (0.9 * 16))  # labelled_share=0.1 of 2 strong views each
    assert last["train_set"] == clf.estimators_[-1].n_labels_ == 16 * repeats + 2 * last["n_pseudo"]
    assert 0 <= last["val_accuracy"] <= 1 and last["train_images_per_second"] > 0


def test_top_k_takes_k_more_per_class_each_round(task):
    clf = fit(task, selection="top_k", top_k=2, threshold=0.2)
    counts = [np.array(r["class_counts"]) for r in clf.rounds_]
    assert (counts[0] == 2).all()
    assert (counts[1] <= 2 + 2).all() and (counts[2] <= 2 + 4).all()
    assert counts[2].sum() > counts[1].sum()


def test_final_step_retrains_a_fresh_network_on_the_enriched_labels(task):
    clf = fit(task, selection="threshold", rounds=1, final_epochs=2)
    assert [r["stage"] for r in clf.rounds_] == ["supervised", "round", "final"]
    assert clf.estimators_[-1].warm_start is False and len(clf.estimators_[-1].history_) == 2
    assert np.allclose(clf.predict_proba(task[3][0]), clf.estimators_[-1].predict_proba(task[3][0]))
    assert len(list(clf.staged_predict_proba(task[3][0]))) == 3


def test_true_labels_only_reach_the_log(task):
    X, y, y_masked, eval_set = task
    params = dict(rounds=1, round_epochs=1, selection="threshold", threshold=0.5, progress=False)
    with_truth = SelfTrainingCNN(CNNClassifier(**FAST), **params).fit(X, y_masked, eval_set=eval_set, y_true=y)
    without = SelfTrainingCNN(CNNClassifier(**FAST), **params).fit(X, y_masked, eval_set=eval_set)
    assert np.array_equal(with_truth.transduction_, without.transduction_)
    assert np.allclose(with_truth.predict_proba(X[:8]), without.predict_proba(X[:8]), atol=1e-6)
    assert np.isnan(without.rounds_[-1]["pseudo_accuracy"])


def test_rerun_with_checkpoints_trains_nothing(task, tmp_path, monkeypatch):
    first = fit(task, selection="threshold", rounds=1, final_epochs=1, checkpoint_dir=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"round0.pt", "round1.pt", "final.pt"}
    monkeypatch.setattr(CNNClassifier, "_train_epoch", lambda *a: pytest.fail("trained again"))
    again = fit(task, selection="threshold", rounds=1, final_epochs=1, checkpoint_dir=tmp_path)
    assert np.allclose(again.predict_proba(task[3][0]), first.predict_proba(task[3][0]), atol=1e-6)


def test_warm_rounds_fine_tune_the_previous_network(task):
    clf = fit(task, selection="threshold", rounds=1, warm_start=True, round_lr=0.02, strong_views=0)
    student = clf.estimators_[1]
    assert student.warm_start and student.lr == 0.02 and student is not clf.estimators_[0]
    n_pseudo = clf.rounds_[1]["n_pseudo"]  # without strong views the pseudo-labelled images are used once
    assert clf.rounds_[1]["train_set"] == 16 * math.ceil(0.1 * n_pseudo / (0.9 * 16)) + n_pseudo


def test_noisy_students_are_fresh_networks_trained_on_strong_views(task, monkeypatch):
    # break: let the student continue from the teacher's network -> no new network is built for it
    built = []
    original = supervised.build_model
    monkeypatch.setattr(supervised, "build_model", lambda *args, **kw: built.append(1) or original(*args, **kw))
    clf = fit(task, selection="threshold", rounds=1, warm_start=False, round_epochs=2, strong_views=1)
    assert len(built) == 2  # the teacher's network and the student's own
    warm = fit(task, selection="threshold", rounds=1, warm_start=True, round_epochs=2, strong_views=1)
    assert len(built) == 3 and warm.estimators_[1].warm_start  # a warm round builds none
    teacher, student = clf.estimators_
    assert not student.warm_start and len(student.history_) == 2
    first = next(iter(student.model_.state_dict().values()))
    assert not np.allclose(first.numpy(), next(iter(teacher.model_.state_dict().values())).numpy())
    n_pseudo = clf.rounds_[1]["n_pseudo"]
    assert clf.rounds_[1]["train_set"] == 16 * math.ceil(0.1 * n_pseudo / (0.9 * 16)) + n_pseudo


def test_strong_views_keep_shape_and_type_and_are_reproducible(task):
    images = task[0][:16]
    first = StrongAugment()(images, torch.Generator().manual_seed(3))
    again = StrongAugment()(images, torch.Generator().manual_seed(3))
    assert first.shape == images.shape and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, images)
    grey = StrongAugment(max_shift=0, jitter=0.0, cutout=56)(images, torch.Generator().manual_seed(0))
    assert (grey == 128).all()  # a cutout twice the image covers it from any centre


def test_cached_proba_predicts_once_for_the_same_weights_and_images(task, monkeypatch):
    clf = fit(task, rounds=0)
    X_val = task[3][0]
    first = cached_proba(clf.estimators_[0], X_val)
    monkeypatch.setattr(CNNClassifier, "predict_proba", lambda *a: pytest.fail("predicted again"))
    assert np.array_equal(cached_proba(clf.estimators_[0], X_val), first)


def test_zero_rounds_is_the_supervised_estimator(task):
    clf = fit(task, rounds=0)
    assert len(clf.estimators_) == 1 and (clf.transduction_ == task[2]).all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"threshold": 0}, r"threshold must be in \(0, 1\], got 0"),
        ({"threshold": 1.5}, r"threshold must be in \(0, 1\], got 1.5"),
        ({"precision": 0.0}, r"precision must be in \(0, 1\], got 0.0"),
        ({"selection": "entropy"}, r"unknown selection 'entropy'; choose one of threshold, per_class, top_k"),
        ({"rounds": -1}, "rounds must be 0 or more, got -1"),
        ({"top_k": 0}, "top_k must be at least 1, got 0"),
        ({"strong_views": -2}, "strong_views must be 0 or more, got -2"),
        ({"labelled_share": 1.0}, r"labelled_share must be in \[0, 1\), got 1.0"),
        ({"temperature": "hot"}, "temperature must be 'auto'"),
        ({"estimator": "cnn"}, "estimator must be a bloodssl.methods.supervised.CNNClassifier"),
    ],
)
def test_bad_parameters_are_refused_before_training(task, params, message):
    X, _, y_masked, _ = task
    with pytest.raises(ValueError, match=message):
        SelfTrainingCNN(**params).fit(X, y_masked)


def test_per_class_selection_needs_a_validation_split(task):
    X, _, y_masked, _ = task
    with pytest.raises(ValueError, match=r"per_class' tunes its thresholds .* pass eval_set"):
        SelfTrainingCNN(CNNClassifier(**FAST), selection="per_class").fit(X, y_masked)


def test_the_notebook_s_selection_rules_and_headline():
    sizes = pseudo_labelling.PLANS["full"]
    variants = pseudo_labelling.methods(sizes)
    assert {v.method for v in variants.values()} == {"self_training"}
    settings = [v.setting for v in variants.values()]
    assert {"selection": "threshold", "threshold": 0.99} in settings and {"selection": "per_class"} in settings
    assert pseudo_labelling.headline(sizes).setting == {"selection": "threshold", "threshold": sizes.headline}
    raw = [v for v in variants.values() if "temperature" in v.setting]  # the same rule on uncalibrated probabilities
    assert [v.setting["threshold"] for v in raw] == list(sizes.raw_thresholds)
    assert all(v.params["temperature"] == 1.0 and v.name not in ("per_class", "top_k") for v in raw)
    assert len(variants) == len(sizes.thresholds) + len(sizes.raw_thresholds) + 2  # no two share a name


@pytest.mark.parametrize("profile", [name for name, plan in pseudo_labelling.PLANS.items() if plan.longer])
def test_longer_fixmatch_schedules_are_longer_and_set_apart_by_their_steps(profile):
    sizes = pseudo_labelling.PLANS[profile]
    variants = [pseudo_labelling.fixmatch(sizes, schedule) for schedule in sizes.longer]
    settings = [v.setting for v in variants]
    assert settings and all(set(s) == {"steps"} for s in settings)
    assert len({s["steps"] for s in settings} | {sizes.fixmatch["steps"]}) == len(settings) + 1
    for schedule, variant in zip(sizes.longer, variants, strict=True):
        assert variant.params["steps"] == schedule.params["steps"] > sizes.fixmatch["steps"]
        assert set(schedule.fractions) <= set(sizes.fractions)
    plain = pseudo_labelling.fixmatch(sizes, teacher="online", align=False)
    assert plain.setting == {"steps": sizes.fixmatch["steps"], "teacher": "online", "align": False}


@pytest.mark.parametrize("profile", PROFILES)
def test_engine_methods_run_on_fixmatch_s_schedule(profile):
    sizes = pseudo_labelling.PLANS[profile]
    assert set(sizes.engine_methods) == {"flexmatch", "mean_teacher"}
    for name in sizes.engine_methods:
        variant = pseudo_labelling.on_engine(sizes, name)
        accepted = get_method(name).get_params(deep=False)
        assert variant.params == {k: v for k, v in sizes.fixmatch.items() if k in accepted}
        assert variant.params["steps"] == sizes.fixmatch["steps"] and variant.setting == {
            "steps": variant.params["steps"]
        }
    assert "threshold" not in pseudo_labelling.on_engine(sizes, "mean_teacher").params


def test_sweep_writes_the_final_result_and_each_round_as_rows_of_that_round(task):
    # break: write rounds as metric names again, or skip the supervised baseline -> the round column is empty
    X, y, _, (X_val, y_val) = task
    splits = {"train": Split("train", X, y), "val": Split("val", X_val, y_val),
              "test": Split("test", X_val, (y_val + 1) % 8)}  # fmt: skip
    base = {k: v for k, v in FAST.items() if k not in {"progress", "tta"}}
    params = dict(rounds=2, round_epochs=1, warm_start=True, round_lr=0.02, strong_views=0, selection="threshold",
                  threshold=0.5, progress=False)  # fmt: skip
    variant = pseudo_labelling.Variant("self_training", {"selection": "threshold", "threshold": 0.5}, params)
    runs, table = pseudo_labelling.sweep(splits, [variant], fractions=[0.25], seeds=[0], base=base,
                                         stem="test_self_training_sweep", profile="smoke")  # fmt: skip
    ours = table[table["method"] == "self_training"]
    per_round = ours[ours["metric"] == "accuracy"].pivot_table(index="round", columns="split", values="value")
    assert list(per_round.index) == [0, 1, 2] and list(per_round.columns) == ["test", "val"]
    log = runs[0].rounds()
    assert per_round["val"].tolist() == log["val_accuracy"].tolist()
    assert per_round["test"].tolist() == log["test_accuracy"].tolist()
    pseudo_rows = ours[ours["metric"] == "n_pseudo"].set_index("round")["value"]
    assert pseudo_rows.tolist() == log["n_pseudo"].tolist() and pseudo_rows.iloc[-1] > 0
    final = ours[ours["round"].isna() & (ours["metric"] == "accuracy")].set_index("split")["value"]
    assert final["test"] == per_round["test"].iloc[-1] and final["test"] < final["val"]  # test labels are wrong
    baseline = table[table["method"] == "supervised"]
    assert baseline["round"].isna().all() and set(baseline["split"]) == {"val", "test"}
