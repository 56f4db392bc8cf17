"""FixMatchCNN on the colour-coded task whose answer is known: the class is the colour."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import colour_coded

from bloodssl.data import Split
from bloodssl.data.augment import StrongAugment
from bloodssl.methods.fixmatch import FixMatchCNN
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.studies import pseudo_labelling
from bloodssl.viz import pseudo as plots_pseudo

# one step of supervised training: round 0 is near chance, what FixMatch reaches is its own
BASE = dict(epochs=1, batch_size=32, lr=0.02, progress=False, tta="none", num_threads=1, min_epoch_samples=8)
# shifts and cutout, no colour jitter: jitter would erase this task's signal
KEEP_COLOUR = StrongAugment(max_shift=4, jitter=0.0, cutout=10)


@pytest.fixture(scope="module")
def task():
    X, y = colour_coded(12)
    X_val, y_val = colour_coded(4, seed=1)
    y_masked = np.full_like(y, -1)
    for label in range(8):
        y_masked[np.flatnonzero(y == label)[:1]] = label  # one label per class
    return X, y, y_masked, (X_val, y_val)


def fit(task, y_true=None, **params) -> FixMatchCNN:
    """Fit on ``task``; ``y_true`` replaces the task's hidden labels in the log."""
    X, y, y_masked, eval_set = task
    params = dict(steps=40, labelled_batch=8, unlabelled_ratio=4, threshold=0.6, lr=0.02, ema_decay=0.9,
                  eval_every=20, strong=KEEP_COLOUR, progress=False) | params  # fmt: skip
    truth = y if y_true is None else y_true
    return FixMatchCNN(CNNClassifier(**BASE), **params).fit(X, y_masked, eval_set=eval_set, y_true=truth)


@pytest.fixture(scope="module")
def fitted(task) -> FixMatchCNN:
    return fit(task)


def test_fixmatch_learns_the_colours_from_one_label_per_class(task, fitted):
    X_val, y_val = task[3]
    supervised, fixmatch = fitted.rounds_
    assert [supervised["stage"], fixmatch["stage"]] == ["supervised", "fixmatch"]
    assert supervised["val_accuracy"] <= 0.5 and fitted.score(X_val, y_val) >= 0.95
    assert fixmatch["n_pseudo"] > 0 and fixmatch["pseudo_accuracy"] >= 0.9
    assert [r["step"] for r in fitted.history_] == [20, 40]


@pytest.mark.parametrize(("teacher", "align"), [("average", False), ("online", True), ("average", True)])
def test_the_guards_against_confirmation_bias_still_learn_the_colours(task, teacher, align):
    X_val, y_val = task[3]
    clf = fit(task, teacher=teacher, align=align, steps=60, ema_decay=0.8)
    assert clf.score(X_val, y_val) >= 0.95 and clf.rounds_[1]["pseudo_accuracy"] >= 0.9


def test_the_unlabelled_images_are_what_lifts_the_accuracy(task, fitted):
    X_val, y_val = task[3]
    labelled_only = fit(task, unlabelled_weight=0.0)
    assert labelled_only.score(X_val, y_val) < fitted.score(X_val, y_val)


def test_the_hidden_labels_only_reach_the_log(task, fitted):
    wrong = (task[1] + 1) % 8
    again = fit(task, y_true=wrong)
    X_val = task[3][0]
    assert np.allclose(again.predict_proba(X_val), fitted.predict_proba(X_val), atol=1e-6)
    assert again.rounds_[1]["pseudo_accuracy"] <= 0.1


def test_a_finished_fit_resumes_from_its_checkpoint_without_training(task, tmp_path, monkeypatch):
    first = fit(task, steps=20, eval_every=10, checkpoint_dir=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"round0.pt", "fixmatch.pt"}
    monkeypatch.setattr(CNNClassifier, "_train_epoch", lambda *a: pytest.fail("trained the base again"))
    monkeypatch.setattr(FixMatchCNN, "_evaluate", lambda *a: pytest.fail("took a FixMatch step again"))
    again = fit(task, steps=20, eval_every=10, checkpoint_dir=tmp_path)
    X_val = task[3][0]
    assert np.allclose(again.predict_proba(X_val), first.predict_proba(X_val), atol=1e-6)
    assert again.history_ == first.history_


def test_sweep_runs_fixmatch_like_the_self_training_methods(task):
    X, y, _, (X_val, y_val) = task
    splits = {name: Split(name, images, labels) for name, images, labels in
              [("train", X, y), ("val", X_val, y_val), ("test", X_val, y_val)]}  # fmt: skip
    sweep_base = {k: v for k, v in BASE.items() if k not in {"progress", "tta"}}
    params = dict(steps=10, labelled_batch=8, unlabelled_ratio=2, eval_every=10, strong=KEEP_COLOUR, progress=False)
    runs, table = pseudo_labelling.sweep(splits, {"fixmatch": params}, fractions=[0.25], seeds=[0], base=sweep_base,
                               stem="test_fixmatch_sweep", profile="smoke", algorithm=FixMatchCNN)  # fmt: skip
    assert isinstance(runs[0].classifier, FixMatchCNN)
    assert set(table["method"]) == {"fixmatch", "supervised"}
    rounds = pseudo_labelling.round_table(runs)
    baseline_val = table[(table["method"] == "supervised") & (table["split"] == "val")]
    assert baseline_val[["metric", "value"]].values.tolist() == [["accuracy", rounds["val_accuracy"].iloc[0]]]
    ((run, network, evaluation),) = pseudo_labelling.final_networks(runs, "fixmatch")
    assert network is run.classifier.estimators_[-1] and evaluation is run.evaluations["test"]
    ((_, baseline, _),) = pseudo_labelling.final_networks(runs, "supervised")
    assert baseline is run.classifier.estimators_[0]
    other_seed = dataclasses.replace(run, seed=1, method="top_k")
    proba = pseudo_labelling.final_probabilities([run, other_seed], ["supervised", "fixmatch"], X_val)
    assert list(proba) == [0] and list(proba[0]) == ["supervised", "fixmatch"]  # seed 1 lacks fixmatch
    assert np.allclose(proba[0]["fixmatch"], network.predict_proba(X_val))
    with pytest.raises(ValueError, match=r"runs span label fractions \[0.25, 0.5\]"):
        pseudo_labelling.final_probabilities([run, dataclasses.replace(run, fraction=0.5)], ["fixmatch"], X_val)
    with pytest.raises(ValueError, match="no run of method 'top_k'"):
        pseudo_labelling.final_networks(runs, "top_k")
    assert list(rounds["stage"]) == ["supervised", "fixmatch"] and rounds["test_accuracy"].notna().all()
    history = pseudo_labelling.history_table(runs)
    assert list(history["step"]) == [10] and (history["label_fraction"] == 0.25).all()
    assert len(plots_pseudo.training_curves(history).axes) == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"threshold": 0}, r"threshold must be in \(0, 1\], got 0"),
        ({"threshold": 1.2}, r"threshold must be in \(0, 1\], got 1.2"),
        ({"steps": 0}, "steps must be at least 1, got 0"),
        ({"unlabelled_ratio": 0}, "unlabelled_ratio must be at least 1, got 0"),
        ({"ema_decay": 1.0}, r"ema_decay must be in \[0, 1\), got 1.0"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"teacher": "student"}, "unknown teacher 'student'; choose one of online, average"),
        ({"estimator": "cnn"}, "estimator must be a bloodssl.methods.supervised.CNNClassifier"),
    ],
)
def test_bad_parameters_are_refused_before_training(task, params, message):
    X, _, y_masked, _ = task
    with pytest.raises(ValueError, match=message):
        FixMatchCNN(**params).fit(X, y_masked)


def test_fully_labelled_data_is_refused(task):
    X, y, _, _ = task
    with pytest.raises(ValueError, match="no unlabelled image"):
        FixMatchCNN(CNNClassifier(**BASE)).fit(X, y)
