"""Ensemble distillation on the online engine, on the colour-coded task (the class is the colour)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import colour_coded

from bloodssl.data.augment import StrongAugment
from bloodssl.methods import distillation
from bloodssl.methods.distillation import EnsembleDistillationCNN
from bloodssl.methods.supervised import CNNClassifier

# ten short epochs: teachers that are right on some colours and unsure of the others
BASE = dict(epochs=10, batch_size=32, lr=0.02, progress=False, tta="none", num_threads=1, min_epoch_samples=8)
SHORT = dict(steps=40, eval_every=20, labelled_batch=8, unlabelled_ratio=4, lr=0.02, ema_decay=0.9, progress=False,
             strong=StrongAugment(max_shift=4, jitter=0.0, cutout=10), teacher_tta="none")  # fmt: skip


@pytest.fixture(scope="module")
def task():
    X, y = colour_coded(12)
    y_masked = np.full_like(y, -1)
    for label in range(8):
        y_masked[np.flatnonzero(y == label)[:1]] = label  # one label per class
    return X, y, y_masked, colour_coded(4, seed=1)


def fit(task, **params) -> EnsembleDistillationCNN:
    X, y, y_masked, eval_set = task
    return EnsembleDistillationCNN(CNNClassifier(**BASE), **(SHORT | params)).fit(X, y_masked, eval_set, y_true=y)


def test_the_soft_labels_are_the_sharpened_mean_of_round_0_and_the_other_teachers(task):
    # break: label with round 0 alone, forget to sharpen, or give the teachers round 0's seed -> other soft labels
    X, y, y_masked, _ = task
    clf = fit(task, teachers=3, temperature=0.5, steps=2, eval_every=2)
    assert [teacher.seed for teacher in clf.teachers_] == [1000, 2000]  # no other run's seed
    for teacher in clf.teachers_:
        same = {k: v for k, v in teacher.get_params().items() if k not in {"seed", "checkpoint"}}
        assert same == {k: v for k, v in clf.estimators_[0].get_params().items() if k not in {"seed", "checkpoint"}}
    unlabelled = X[y_masked < 0]
    mean = np.mean([net.predict_proba(unlabelled) for net in [clf.estimators_[0], *clf.teachers_]], 0)
    expected = mean**2 / (mean**2).sum(1, keepdims=True)
    assert np.allclose(clf.soft_labels_.numpy(), expected, atol=1e-6)
    assert not np.allclose(mean, clf.estimators_[0].predict_proba(unlabelled), atol=1e-3)  # the teachers differ
    # break: score the soft labels against the labels of other images -> another share
    assert clf.soft_label_accuracy(y) == np.mean(expected.argmax(1) == y[y_masked < 0])
    assert clf.teacher_seconds_ > sum(teacher.fit_seconds_ for teacher in clf.teachers_) > 0


def test_the_student_learns_the_soft_labels_of_the_unlabelled_images(task):
    # break: drop the unlabelled loss, or train it towards the argmax -> the student stays far from the soft labels
    X, _, y_masked, (X_val, y_val) = task
    unlabelled = X[y_masked < 0]

    def divergence(clf):  # KL(soft labels || student) on the unlabelled images
        soft, student = clf.soft_labels_.numpy(), clf.predict_proba(unlabelled)
        return float((soft * (np.log(soft + 1e-12) - np.log(student + 1e-12))).sum(1).mean())

    labelled_only, distilled = fit(task, temperature=2.0, unlabelled_weight=0.0), fit(task, temperature=2.0)
    assert divergence(distilled) < divergence(labelled_only) / 4
    assert distilled.score(X_val, y_val) >= 0.95


def test_a_second_fit_reloads_round_0_the_teachers_and_the_student(task, tmp_path, monkeypatch):
    first = fit(task, teachers=2, checkpoint_dir=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"round0.pt", "teacher1.pt", "soft_labels.pt", "distillation.pt"}
    monkeypatch.setattr(CNNClassifier, "_train_epoch", lambda *a: pytest.fail("trained a teacher again"))
    monkeypatch.setattr(EnsembleDistillationCNN, "_evaluate", lambda *a: pytest.fail("took a step again"))
    again = fit(task, teachers=2, checkpoint_dir=tmp_path)
    X_val = task[3][0]
    assert np.allclose(again.predict_proba(X_val), first.predict_proba(X_val), atol=1e-6)
    # break: label the images again on a reload -> the labelling's seconds are measured anew
    assert again.teacher_seconds_ == first.teacher_seconds_


def test_other_soft_labels_take_the_students_steps_again(task, tmp_path, monkeypatch):
    # break: key the student's checkpoint on its parameters and round 0 alone -> the student of the old teachers
    # is reloaded and predicts as before
    first = fit(task, teachers=2, checkpoint_dir=tmp_path)
    monkeypatch.setattr(distillation, "TEACHER_SEED_STEP", 7)  # other teachers, same parameters
    again = fit(task, teachers=2, checkpoint_dir=tmp_path)
    assert again.teachers_[0].seed == 7 and not np.allclose(again.soft_labels_, first.soft_labels_)
    X_val = task[3][0]
    assert not np.allclose(again.predict_proba(X_val), first.predict_proba(X_val), atol=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"teachers": 0}, "teachers must be at least 1"),
        ({"temperature": 0.0}, "temperature must be positive"),
        ({"teacher_tta": "flips"}, "unknown teacher_tta 'flips'; choose one of none, dihedral"),
    ],
)
def test_bad_parameters_are_refused_before_training(task, params, message):
    X, _, y_masked, _ = task
    with pytest.raises(ValueError, match=message):
        EnsembleDistillationCNN(**params).fit(X, y_masked)
