"""One contract over every registered method and query strategy: a new one that breaks the
scikit-learn conventions the notebooks rely on fails here, before it reaches a notebook."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import colour_coded
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from bloodssl.active import STRATEGIES, get_strategy
from bloodssl.data.augment import StrongAugment
from bloodssl.methods import METHODS, get_method
from bloodssl.methods.supervised import CNNClassifier

BASE = dict(epochs=1, batch_size=16, progress=False, tta="none", num_threads=1, min_epoch_samples=8)
ONLINE = dict(steps=4, labelled_batch=4, unlabelled_ratio=2, eval_every=2, progress=False)
# the smallest settings that exercise each method's whole fit (and, for images, its CNN)
TINY = {
    "supervised": BASE,
    "self_training": dict(
        estimator=CNNClassifier(**BASE), rounds=1, round_epochs=1, strong_views=1, top_k=2, progress=False
    ),  # fmt: skip
    "fixmatch": dict(ONLINE, estimator=CNNClassifier(**BASE), strong=StrongAugment()),
    "flexmatch": dict(ONLINE, estimator=CNNClassifier(**BASE)),
    "mean_teacher": dict(ONLINE, estimator=CNNClassifier(**BASE)),
    "distillation": dict(ONLINE, estimator=CNNClassifier(**BASE), teachers=2, teacher_tta="none"),
    "graph": dict(n_neighbors=3),
}
FEATURES = {"graph"}  # methods that take embeddings (N, dim) rather than images


@pytest.fixture(scope="module")
def task():
    images, y = colour_coded(3)
    y_masked = np.full_like(y, -1)
    for label in range(8):
        y_masked[np.flatnonzero(y == label)[:1]] = label
    features = images.reshape(len(images), -1, 3).mean(1) / 255.0
    return images, features, y_masked


def inputs(name: str, task) -> tuple[np.ndarray, np.ndarray]:
    images, features, y = task
    return (features if name in FEATURES else images), y


def test_every_registered_method_has_a_contract_case():
    assert set(METHODS) == set(TINY), "add the new method's smallest settings to TINY"


def test_an_unknown_method_lists_the_choices():
    with pytest.raises(ValueError, match="unknown method 'fixmach'; choose one of distillation, fixmatch, flexmatch"):
        get_method("fixmach")


@pytest.mark.parametrize("name", sorted(TINY))
def test_parameters_are_stored_as_given_and_clone_keeps_them(name):
    estimator = get_method(name, **TINY[name])
    params = estimator.get_params(deep=False)
    assert {k: params[k] for k in TINY[name]} == TINY[name]
    twin = clone(estimator)
    assert repr(twin.get_params(deep=False)) == repr(params)
    assert estimator.set_params(**params) is estimator


@pytest.mark.parametrize("name", sorted(TINY))
def test_predicting_before_fit_says_to_fit_first(name, task):
    X, _ = inputs(name, task)
    with pytest.raises(NotFittedError, match=f"this {type(get_method(name)).__name__} is not fitted yet; call fit"):
        get_method(name, **TINY[name]).predict_proba(X)


@pytest.mark.parametrize("name", sorted(TINY))
def test_fit_returns_the_estimator_and_it_pickles_with_its_predictions(name, task):
    X, y = inputs(name, task)
    estimator = get_method(name, **TINY[name])
    assert estimator.fit(X, y) is estimator
    proba = estimator.predict_proba(X)
    assert proba.shape == (len(X), 8) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert list(estimator.classes_) == list(range(8))
    assert np.array_equal(estimator.predict(X), proba.argmax(1))
    again = pickle.loads(pickle.dumps(estimator))
    assert np.allclose(again.predict_proba(X), proba, atol=1e-6)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_is_built_by_name_pickles_and_repeats_itself_for_a_seed(name):
    rng = np.random.default_rng(0)
    proba, embeddings = rng.dirichlet(np.ones(4), size=(8, 40)), rng.normal(size=(40, 8))
    strategy = get_strategy(name)
    assert strategy.name == name and get_strategy(strategy) is strategy
    again = pickle.loads(pickle.dumps(strategy))
    picks = [s(proba, embeddings, np.arange(40), 5, np.random.default_rng(3)).tolist() for s in (strategy, again)]
    assert picks[0] == picks[1]
