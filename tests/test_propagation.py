from __future__ import annotations

import numpy as np
import pytest

from bloodssl import results
from bloodssl.methods import propagation
from bloodssl.methods.propagation import GraphClassifier


def blobs(n_classes: int = 2, n_per_blob: int = 40, seed: int = 0):
    """Well-separated blobs on the unit circle (the scale the kernel grid assumes)."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    X = np.concatenate([rng.normal(c, 0.05, (n_per_blob, 2)) for c in centres])
    return X, np.repeat(np.arange(n_classes), n_per_blob)


def one_label_per_class(y: np.ndarray) -> np.ndarray:
    masked = np.full_like(y, -1)
    first = [np.flatnonzero(y == c)[0] for c in np.unique(y)]
    masked[first] = y[first]
    return masked


@pytest.mark.parametrize("method", propagation.METHODS)
@pytest.mark.parametrize("kernel", propagation.KERNELS)
def test_one_label_per_blob_propagates_to_the_whole_blob(method, kernel):
    X, y = blobs()
    model = GraphClassifier(method=method, kernel=kernel, gamma=10, n_neighbors=5).fit(X, one_label_per_class(y))
    assert np.array_equal(model.transduction_, y)
    X_new, y_new = blobs(seed=1)
    assert np.array_equal(model.predict(X_new), y_new)
    assert model.predict_proba(X_new).shape == (len(X_new), 8)


def test_knn_inductive_classifier_works_too():
    X, y = blobs()
    model = GraphClassifier(classifier="knn").fit(X, one_label_per_class(y))
    assert model.score(*blobs(seed=1)) == 1.0


def test_unknown_kernel_names_the_choices():
    X, y = blobs()
    with pytest.raises(ValueError, match="unknown kernel 'linear'; choose one of rbf, knn"):
        GraphClassifier(kernel="linear").fit(X, one_label_per_class(y))


@pytest.mark.parametrize(
    "params, message",
    [({"method": "walk"}, "propagation, spreading"), ({"classifier": "svm"}, "logistic, knn"),
     ({"alpha": 1.0}, "alpha must be in"), ({"n_neighbors": 500}, "n_neighbors=500")],
)  # fmt: skip
def test_bad_parameters_are_named(params, message):
    X, y = blobs()
    with pytest.raises(ValueError, match=message):
        GraphClassifier(**params).fit(X, one_label_per_class(y))


def test_no_label_at_all_is_an_error():
    X, y = blobs()
    with pytest.raises(ValueError, match="no labelled row"):
        GraphClassifier().fit(X, np.full_like(y, -1))


def test_candidates_follow_the_grid():
    grid = {"rbf": {"gamma": [1.0, 2.0]}, "knn": {"n_neighbors": [3]}, "alpha": {"alpha": [0.1, 0.5]}}
    assert propagation.candidates("propagation", "rbf", grid) == [{"gamma": 1.0}, {"gamma": 2.0}]
    assert len(propagation.candidates("spreading", "rbf", grid)) == 4


def test_validation_selects_a_gamma_that_works():
    X, y = blobs(n_classes=4)
    X_val, y_val = blobs(n_classes=4, seed=1)
    grid = {"rbf": {"gamma": [1e-4, 10.0]}, "knn": {}, "alpha": {"alpha": [0.2]}}
    model, best, score = propagation.select(X, one_label_per_class(y), X_val, y_val, method="propagation",
                                            kernel="rbf", grid=grid)  # fmt: skip
    assert best == {"gamma": 10.0} and score == 1.0 and model.gamma == 10.0


def arcs(n_per_arc: int = 60, seed: int = 0):
    """Two arcs of the unit circle (0-100 and 110-210 degrees), class 0 and class 1."""
    rng = np.random.default_rng(seed)
    angles = np.concatenate([np.linspace(0, 100, n_per_arc), np.linspace(110, 210, n_per_arc)])
    angles = np.radians(angles + rng.normal(0, 0.3, len(angles)))
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), np.repeat([0, 1], n_per_arc)


def test_sweep_writes_tidy_rows_and_class_shares(monkeypatch):
    # break: score labelled_only for every method (or skip propagation) -> the arcs' far ends stay wrong
    X, y = arcs()
    X_val, y_val = arcs(20, seed=1)
    X_test, y_test = arcs(20, seed=2)
    grid = {"rbf": {"gamma": [300.0]}, "knn": {"n_neighbors": [5]}, "alpha": {"alpha": [0.99]}}  # labels travel far
    labels = {"train": y, "val": y_val, "test": y_test}
    embeddings = {"arcs": {"train": X, "val": X_val, "test": X_test}}
    # one label per arc (100 and 210 degrees): a line between those two points alone cuts the second arc in two
    monkeypatch.setattr(propagation, "labelled_subset", lambda labels, fraction, seed: np.array([59, 119]))
    table, chosen, shares = propagation.sweep(embeddings, labels, fractions=[2 / 120], seeds=[0], profile="smoke",
                                              grid=grid, n_components=2)  # fmt: skip
    assert list(table.columns) == list(results.COLUMNS)
    accuracy = table[(table["metric"] == "accuracy") & (table["split"] == "test")]
    assert set(zip(accuracy["method"], accuracy["params"], strict=True)) == {
        ("labelled_only", "{}"), ("label_propagation", '{"kernel":"rbf"}'), ("label_propagation", '{"kernel":"knn"}'),
        ("label_spreading", '{"kernel":"rbf"}'), ("label_spreading", '{"kernel":"knn"}')}  # fmt: skip
    assert set(chosen["method"]) == {"label_propagation (kernel=rbf)", "label_propagation (kernel=knn)",
                                     "label_spreading (kernel=rbf)", "label_spreading (kernel=knn)"}  # fmt: skip
    by_method = accuracy.groupby("method")["value"].min()
    assert by_method["labelled_only"] < 0.85 and by_method.drop("labelled_only").min() >= 0.95
    assert len(chosen) == 4 and set(chosen["gamma"].dropna()) == {300.0}
    assert np.allclose(shares.groupby(["method", "seed"])["propagated"].sum(), 1.0)


def test_sweep_calls_an_embedding_function_once_per_fraction_and_seed():
    X, y = blobs(n_classes=8, n_per_blob=30)
    X_val, y_val = blobs(n_classes=8, n_per_blob=5, seed=1)
    calls = []

    def learnt(fraction: float, seed: int) -> dict:
        calls.append((fraction, seed))
        return {"train": X, "val": X_val, "test": X_val}

    grid = {"rbf": {"gamma": [10.0]}, "knn": {"n_neighbors": [5]}, "alpha": {"alpha": [0.2]}}
    labels = {"train": y, "val": y_val, "test": y_val}
    table, _, _ = propagation.sweep({"learnt": learnt}, labels, fractions=[0.05, 0.1], seeds=[3], profile="smoke",
                                    kernels=["knn"], grid=grid)  # fmt: skip
    assert calls == [(0.05, 3), (0.1, 3)]
    assert set(table["model"]) == {"learnt"} and set(table["label_fraction"]) == {0.05, 0.1}


def test_a_sweep_with_no_fraction_returns_empty_tables_and_embeds_nothing():
    # break: build the results from no rows without their columns -> results.frame fails on an empty sweep
    def learnt(fraction: float, seed: int) -> dict:
        raise AssertionError("no fraction: no embedding is needed")

    labels = {"train": np.array([0, 1]), "val": np.array([0, 1]), "test": np.array([0, 1])}
    table, chosen, shares = propagation.sweep({"learnt": learnt}, labels, fractions=[], seeds=[0], profile="smoke")
    assert table.empty and list(table.columns) == list(results.COLUMNS)
    assert chosen.empty and shares.empty
