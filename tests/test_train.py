from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import colour_coded

from bloodssl.core.losses import class_weights
from bloodssl.core.schedules import lr_factor
from bloodssl.core.validation import warn_missing_classes
from bloodssl.methods.fixmatch import FixMatchCNN
from bloodssl.methods.supervised import CNNClassifier

FAST = dict(epochs=4, batch_size=32, lr=0.02, progress=False, tta="none", num_threads=1)


def test_learns_a_colour_coded_task():
    X, y = colour_coded()
    X_val, y_val = colour_coded(8, seed=1)
    clf = CNNClassifier(**FAST).fit(X, y, eval_set=(X_val, y_val))
    assert clf.score(X_val, y_val) >= 0.9
    proba = clf.predict_proba(X_val)
    assert proba.shape == (len(X_val), 8)
    assert np.allclose(proba.sum(1), 1, atol=1e-5)
    assert clf.transform(X_val).shape == (len(X_val), 128)
    assert [r["epoch"] for r in clf.history_] == [1, 2, 3, 4]
    assert 1 <= clf.best_epoch_ <= 4 and clf.train_images_per_second_ > 0


def test_unlabelled_images_are_not_trained_on():
    # break: train on every image (labels -1 included, or the hidden images) -> the predictions differ
    X, y = colour_coded()
    y_masked = np.where(np.arange(len(y)) % 4 == 0, y, -1)
    unlabelled = y_masked < 0
    other = X.copy()
    rng = np.random.default_rng(1)
    for i in np.flatnonzero(unlabelled):  # other images, same pixels: the normalisation statistics stay equal
        other[i] = rng.permutation(X[i].reshape(-1, 3)).reshape(X[i].shape)
    params = {**FAST, "epochs": 1}
    first = CNNClassifier(**params).fit(X, y_masked)
    second = CNNClassifier(**params).fit(other, y_masked)
    assert first.n_labels_ == int((~unlabelled).sum())
    assert np.array_equal(first.predict_proba(X), second.predict_proba(X))


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    X, y = colour_coded()
    X_val, y_val = colour_coded(4, seed=1)
    whole = CNNClassifier(**FAST).fit(X, y, eval_set=(X_val, y_val))

    checkpoint = tmp_path / "run.pt"
    original = CNNClassifier._train_epoch
    calls = {"n": 0}

    def crash_on_third_epoch(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(CNNClassifier, "_train_epoch", crash_on_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        CNNClassifier(**FAST, checkpoint=checkpoint).fit(X, y, eval_set=(X_val, y_val))
    monkeypatch.setattr(CNNClassifier, "_train_epoch", original)
    resumed = CNNClassifier(**FAST, checkpoint=checkpoint).fit(X, y, eval_set=(X_val, y_val))

    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4]
    assert np.allclose(resumed.predict_proba(X_val), whole.predict_proba(X_val), atol=1e-5)


def test_finished_checkpoint_is_reused_without_training(tmp_path, monkeypatch):
    X, y = colour_coded()
    first = CNNClassifier(**FAST, checkpoint=tmp_path / "run.pt").fit(X, y)
    monkeypatch.setattr(CNNClassifier, "_train_epoch", lambda *a: pytest.fail("trained again"))
    again = CNNClassifier(**FAST, checkpoint=tmp_path / "run.pt").fit(X, y)
    assert np.allclose(again.predict_proba(X[:8]), first.predict_proba(X[:8]))


def test_checkpoint_of_other_data_is_not_reused(tmp_path):
    X, y = colour_coded()
    CNNClassifier(**{**FAST, "epochs": 1}, checkpoint=tmp_path / "run.pt").fit(X, y)
    with pytest.warns(UserWarning, match="written for other parameters or data"):
        CNNClassifier(**{**FAST, "epochs": 1}, checkpoint=tmp_path / "run.pt").fit(X[:-8], y[:-8])


def test_class_weights_are_the_inverse_class_frequency():
    weights = class_weights(torch.tensor([0, 0, 0, 1, 1, 2]), 4, "balanced")
    assert weights.tolist() == pytest.approx([7 / 12, 7 / 8, 7 / 4, 7 / 4])  # a missing class counts once
    assert class_weights(torch.tensor([0, 1]), 2, None) is None


def test_class_weighted_loss_trains_and_changes_the_training():
    # break: ignore class_weight -> both runs are the same run; the fixture is imbalanced (weights differ from 1)
    X, y = colour_coded()
    keep = (y != 0) | (np.arange(len(y)) % 6 == 0)  # class 0 keeps a sixth of its images
    X, y = X[keep], y[keep]
    plain = CNNClassifier(**FAST).fit(X, y)
    weighted = CNNClassifier(**FAST, class_weight="balanced").fit(X, y)
    assert weighted.score(X, y) >= 0.9
    assert weighted.history_[0]["loss"] != pytest.approx(plain.history_[0]["loss"], abs=1e-4)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"schedule": "step"}, "unknown schedule 'step'; choose one of onecycle, cosine"),
        ({"tta": "flips"}, "unknown tta 'flips'"),
        ({"class_weight": "inverse"}, "class_weight must be None or 'balanced'"),
        ({"epochs": 0}, "epochs and batch_size must be positive"),
        ({"augment": "fog"}, "augment must be True, False or one of none, geometric, cell"),
    ],
)
def test_bad_parameters_are_named(params, message):
    X, y = colour_coded(2)
    with pytest.raises(ValueError, match=message):
        CNNClassifier(**{**FAST, **params}).fit(X, y)


@pytest.mark.parametrize("augment", ["mixup", "augmix"])
def test_a_soft_label_and_a_torchvision_recipe_train_as_well_as_the_cell_recipe(augment):
    X, y = colour_coded()
    X_val, y_val = colour_coded(8, seed=1)
    clf = CNNClassifier(**FAST, augment=augment).fit(X, y, eval_set=(X_val, y_val))
    assert clf.score(X_val, y_val) >= 0.9


def test_bad_inputs_are_named():
    X, y = colour_coded(2)
    with pytest.raises(ValueError, match="every label is -1"):
        CNNClassifier(**FAST).fit(X, np.full_like(y, -1))
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.7"):
        CNNClassifier(**FAST, n_classes=8).fit(X, y + 5)
    with pytest.raises(ValueError, match=r"X must be uint8 images of shape \(N, H, W, 3\) or \(N, H, W, 1\)"):
        CNNClassifier(**FAST).fit(X.astype(np.float32), y)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_schedules_peak_then_reach_zero(schedule):
    factors = [lr_factor(schedule, step, 100) for step in range(101)]
    assert max(factors) == pytest.approx(1.0, abs=0.02)
    assert factors[-1] == pytest.approx(0.0)
    assert lr_factor(schedule, 1, 3) > 0  # a tiny run still trains


def test_warm_start_continues_from_the_trained_weights():
    # break: build a fresh network on the second fit -> the weights jump back to a random start
    X, y = colour_coded()
    cold = CNNClassifier(**{**FAST, "epochs": 1}).fit(X, y)
    trained = CNNClassifier(**FAST, warm_start=True).fit(X, y)
    first_weights = trained.model_.head.weight.detach().clone()
    trained.set_params(epochs=1, lr=1e-6).fit(X, y)  # a step too small to move far from where it starts
    assert trained.history_[0]["loss"] < cold.history_[0]["loss"]
    assert np.allclose(trained.model_.head.weight.detach(), first_weights, atol=1e-4)
    assert not np.allclose(cold.model_.head.weight.detach(), first_weights, atol=1e-2)


def test_the_weights_of_the_best_validation_epoch_are_kept(monkeypatch):
    # break: keep the last epoch's weights -> the head wiped after epoch 2 predicts one class
    X, y = colour_coded()
    X_val, y_val = colour_coded(4, seed=1)
    original = CNNClassifier._train_epoch

    def wipe_the_head_from_epoch_3(self, *args):
        loss = original(self, *args)
        if len(getattr(self, "_epochs_seen", [])) >= 2:
            with torch.no_grad():
                self.model_.head.weight.zero_()
                self.model_.head.bias.zero_()
        self._epochs_seen = [*getattr(self, "_epochs_seen", []), 1]
        return loss

    monkeypatch.setattr(CNNClassifier, "_train_epoch", wipe_the_head_from_epoch_3)
    clf = CNNClassifier(**{**FAST, "epochs": 4}).fit(X, y, eval_set=(X_val, y_val))
    scores = [record["val_accuracy"] for record in clf.history_]
    assert scores[2] == scores[3] == 1 / 8 and max(scores[:2]) > 0.5
    assert clf.best_epoch_ == 1 + int(np.argmax(scores[:2]) if scores[0] != scores[1] else 1)
    assert clf.score(X_val, y_val) == max(scores)


# -- labels that leave classes out ---------------------------------------------------------


def missing_class_warnings(fit) -> list[str]:
    """The messages of the missing-class warnings that ``fit()`` issues."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit()
    return [str(w.message) for w in caught if "labelled images" in str(w.message)]


@pytest.mark.parametrize(
    ("labels", "n_classes", "message"),
    [
        ([0, 3, 3, -1], 8, r"y's labelled images cover classes \[0, 3\] of 8; .*never predict the others \(1, 2, 4,"),
        ([2, 2, -1], 8, r"cover classes \[2\] of 8"),
        ([0, 2, -1], 3, r"cover classes \[0, 2\] of 3; .*\(1\). Fix: label at least one image per class"),
        ([0, 0, -1], 1, r"y's labelled images are all of class 0.*Fix: label images of at least two classes"),
    ],
    ids=["two_of_eight", "one_of_eight", "a_gap_below_the_largest", "one_class_only"],
)
def test_labels_that_leave_classes_out_warn_with_the_fix(labels, n_classes, message):
    # break: compare against the labels' own classes (np.unique(y)) or skip single-class sets -> no warning
    with pytest.warns(UserWarning, match=message):
        warn_missing_classes(np.array(labels), n_classes)
    assert missing_class_warnings(lambda: warn_missing_classes(np.array([0, 1, 2, -1]), 3)) == []


def test_the_cnn_warns_once_per_fit_when_its_labels_leave_classes_out():
    # break: drop warn_missing_classes from CNNClassifier.fit -> a network with 8 outputs trains on 2 classes silently
    X, y = colour_coded(2)
    two = np.where(y < 2, y, -1)
    params = {**FAST, "epochs": 1, "min_epoch_samples": 8}
    found = missing_class_warnings(lambda: CNNClassifier(**params, n_classes=8).fit(X, two))
    assert len(found) == 1 and "cover classes [0, 1] of 8" in found[0]
    assert missing_class_warnings(lambda: CNNClassifier(**params).fit(X, two)) == []  # 2 classes inferred, both seen
    assert missing_class_warnings(lambda: CNNClassifier(**params).fit(X, y)) == []


def test_the_online_engine_warns_once_when_its_labels_leave_classes_out():
    # break: warn in OnlineSSL.fit as well as in its round 0 (or in neither) -> two warnings, or none
    X, y = colour_coded(2)
    first = np.unique(y, return_index=True)[1]
    y_masked = np.where(np.isin(np.arange(len(y)), first) & (y < 7), y, -1)  # class 7 only in the validation labels
    base = CNNClassifier(**{**FAST, "epochs": 1, "min_epoch_samples": 8})
    method = FixMatchCNN(base, steps=2, labelled_batch=4, unlabelled_ratio=2, eval_every=2, progress=False)
    found = missing_class_warnings(lambda: method.fit(X, y_masked, eval_set=(X, y)))
    assert len(found) == 1 and "cover classes [0, 1, 2, 3, 4, 5, 6] of 8" in found[0], found
