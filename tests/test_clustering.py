from __future__ import annotations

import numpy as np
import pytest

from bloodssl import results
from bloodssl.methods import clustering


def blobs(n_per_blob: int = 40, centres=((0.0, 0.0), (10.0, 10.0)), seed: int = 0):
    """Well-separated Gaussian blobs in 2-D and their labels."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, 0.5, (n_per_blob, 2)) for c in centres])
    return X, np.repeat(np.arange(len(centres)), n_per_blob)


def test_kmeans_recovers_two_well_separated_blobs():
    X, y = blobs()
    labels, params = clustering.cluster(X, "kmeans", n_clusters=2)
    metrics = clustering.scores(y, labels, X)
    assert metrics["ari"] == pytest.approx(1.0) and metrics["nmi"] == pytest.approx(1.0)
    assert metrics["silhouette"] > 0.8 and params == {"n_clusters": 2}


@pytest.mark.parametrize("method", ["dbscan", "hdbscan"])
def test_density_methods_recover_the_blobs_and_call_far_outliers_noise(method):
    X, y = blobs()
    outliers = np.array([[40.0, -40.0], [-40.0, 40.0], [60.0, 60.0], [-50.0, -50.0]])
    X, truth = np.concatenate([X, outliers]), np.concatenate([y, [-1] * len(outliers)])
    labels, _ = clustering.cluster(X, method, min_samples=5, min_cluster_size=10)
    assert clustering.scores(truth, labels, X)["ari"] == pytest.approx(1.0)
    assert (labels[-len(outliers) :] == -1).all()


def test_knee_is_where_a_flat_curve_turns_up():
    curve = np.concatenate([np.linspace(0, 1, 90), np.linspace(2, 50, 10)])
    assert clustering.knee(curve) in (89, 90)


def test_dbscan_eps_lies_between_the_within_and_between_blob_distances():
    X, _ = blobs()
    # break: read eps off the wrong end of the curve, or scale it 10x -> outside the within-blob scale
    eps = clustering.dbscan_eps(X, min_samples=5)
    within = clustering.k_distances(X, 4)  # each point's 4th neighbour, all inside its blob
    assert np.median(within) < eps < within.max()  # a typical point is a core point; the blobs, 14 apart, stay apart


def test_k_distances_are_sorted_and_exclude_the_point_itself():
    X = np.array([[0.0], [1.0], [3.0]])
    assert clustering.k_distances(X, 1).tolist() == [1.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="k must be in 1..2"):
        clustering.k_distances(X, 3)


def test_one_cluster_has_no_silhouette_and_noise_is_counted():
    X, y = blobs()
    labels = np.where(np.arange(len(y)) < 5, -1, 0)
    metrics = clustering.scores(y, labels, X)
    assert np.isnan(metrics["silhouette"]) and metrics["noise_share"] == pytest.approx(5 / len(y))


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match="kmeans, dbscan, hdbscan"):
        clustering.cluster(np.zeros((4, 2)), "spectral")


def test_evaluate_writes_tidy_rows_per_embedding_and_method():
    X, y = blobs()
    table, assignments = clustering.evaluate({"good": X, "noise": np.random.default_rng(0).normal(size=X.shape)}, y,
                                             seed=0, profile="smoke", n_clusters=2, min_samples=5,
                                             label_fractions={"good": 1.0})  # fmt: skip
    assert list(table.columns) == list(results.COLUMNS)
    ari = table[table["metric"] == "ari"].set_index(["model", "method"])["value"]
    assert ari["good", "kmeans"] == pytest.approx(1.0) and ari["noise", "kmeans"] < 0.2
    assert set(table.loc[table["model"] == "good", "label_fraction"]) == {1.0}
    assert assignments["good", "hdbscan"].shape == y.shape


def test_reduce_fits_on_train_and_keeps_rows():
    # break: fit the PCA on the test rows (or on all rows) -> its first axis follows the test spread
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 10)) * np.r_[5.0, np.ones(9)]  # the train spread lies along axis 0
    test = rng.normal(size=(40, 10)) * np.r_[np.ones(9), 50.0]  # the test spread along axis 9
    reduced = clustering.reduce({"train": train, "test": test}, n_components=4)
    assert reduced["train"].shape == (200, 4) and reduced["test"].shape == (40, 4)
    assert reduced["train"][:, 0].var() > 5 * reduced["train"][:, 1].var()


def test_contingency_orders_clusters_by_their_majority_class():
    y = np.array([0, 0, 1, 1, 1])
    table = clustering.contingency(y, np.array([5, 5, 2, 2, -1]), class_names=["a", "b"])
    assert list(table.columns) == [5, 2, "noise"] and table.loc["b", 2] == 2


def test_k_sweep_has_a_silhouette_peak_at_the_true_number_of_blobs():
    X, _ = blobs(centres=((0, 0), (10, 0), (0, 10)))
    table = clustering.k_sweep(X, ks=range(2, 6))
    assert table.loc[table["silhouette"].idxmax(), "k"] == 3


def test_projection_subsamples_and_rejects_unknown_names():
    X, _ = blobs(n_per_blob=30)
    coords, indices = clustering.project(X, "tsne", max_points=40)
    assert coords.shape == (40, 2) and len(np.unique(indices)) == 40
    assert clustering.project(X, "pca")[0].shape == (60, 2)
    with pytest.raises(ValueError, match="pca, tsne, umap"):
        clustering.project(X, "mds")
