"""How well embeddings cluster into the eight cell types: maps, KMeans, DBSCAN and HDBSCAN.

Every embedding gets the same preprocessing before it is clustered (rows scaled to unit
length, then PCA fitted on the training split), so the comparison is between embeddings,
not between scalings. Clusters are scored against the true classes of the test split with
ARI and NMI (noise points of DBSCAN/HDBSCAN count as one more cluster), and on their own
with the silhouette in the preprocessed space (noise points left out).

The computing functions run BLAS and OpenMP on one thread (``ONE_THREAD``): on two CPU
cores shared with other jobs, their thread pools spin-wait for each other (a t-SNE of
2,000 points took 31 s with two threads and 9 s with one).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.cluster import DBSCAN, HDBSCAN, KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer
from threadpoolctl import threadpool_limits

from bloodssl import results
from bloodssl.data import SHORT_NAMES

METHODS = ("kmeans", "dbscan", "hdbscan")
PROJECTIONS = ("pca", "tsne", "umap")
ONE_THREAD = threadpool_limits.wrap(limits=1)


def preprocessor(n_components: int = 32, seed: int = 0) -> Pipeline:
    """Unit-length rows, then PCA to ``n_components`` (fewer if the data have fewer dimensions)."""
    return make_pipeline(Normalizer(), PCA(n_components, random_state=seed))


@ONE_THREAD
def reduce(
    embeddings: Mapping[str, np.ndarray], n_components: int = 32, seed: int = 0, fit_on: str = "train"
) -> dict[str, np.ndarray]:
    """Every split of one embedding through a ``preprocessor`` fitted on the ``fit_on`` split."""
    train = embeddings[fit_on]
    pipe = preprocessor(min(n_components, *train.shape), seed).fit(train)
    return {name: pipe.transform(array).astype(np.float32) for name, array in embeddings.items()}


@ONE_THREAD
def explained_variance(X: np.ndarray, n_components: int = 50) -> np.ndarray:
    """Share of variance explained by each principal component of the unit-length rows of ``X``."""
    pca = PCA(min(n_components, *X.shape)).fit(Normalizer().transform(X))
    return pca.explained_variance_ratio_


def knee(curve: np.ndarray) -> int:
    """Index of the knee of an increasing curve: the point furthest from the straight line
    between its first and last points (both axes scaled to [0, 1], as in Kneedle)."""
    y = np.asarray(curve, dtype=float)
    if len(y) < 3:
        raise ValueError(f"a knee needs at least 3 points, got {len(y)}")
    x = np.linspace(0, 1, len(y))
    span = y[-1] - y[0]
    y = (y - y[0]) / span if span > 0 else np.zeros_like(y)
    return int(np.argmax(x - y))


@ONE_THREAD
def k_distances(X: np.ndarray, k: int) -> np.ndarray:
    """Distance of every point to its ``k``-th nearest other point, sorted ascending."""
    if not 1 <= k < len(X):
        raise ValueError(f"k must be in 1..{len(X) - 1} for {len(X)} points, got {k}")
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    return np.sort(distances[:, k])


def dbscan_eps(X: np.ndarray, min_samples: int) -> float:
    """DBSCAN's ``eps`` read off the k-distance curve (``k = min_samples - 1`` other points,
    so that a core point has ``min_samples`` points within ``eps`` counting itself): its knee."""
    curve = k_distances(X, min_samples - 1)
    return float(curve[knee(curve)])


@ONE_THREAD
def cluster(
    X: np.ndarray,
    method: str,
    *,
    n_clusters: int = 8,
    min_samples: int = 10,
    min_cluster_size: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """Cluster labels of ``X`` (-1 for noise) and the parameters used.

    ``kmeans`` finds ``n_clusters``; ``dbscan`` uses ``min_samples`` and the ``eps`` of
    ``dbscan_eps``; ``hdbscan`` uses ``min_cluster_size`` (default 1 % of the points).
    """
    if method == "kmeans":
        params = {"n_clusters": n_clusters}
        labels = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(X)
    elif method == "dbscan":
        params = {"eps": dbscan_eps(X, min_samples), "min_samples": min_samples}
        labels = DBSCAN(**params).fit_predict(X)
    elif method == "hdbscan":
        params = {"min_cluster_size": min_cluster_size or max(5, round(0.01 * len(X)))}
        labels = HDBSCAN(**params, copy=True).fit_predict(X)
    else:
        raise ValueError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    return labels, params


@ONE_THREAD
def scores(y_true: np.ndarray, labels: np.ndarray, X: np.ndarray) -> dict[str, float]:
    """ARI and NMI against ``y_true``; silhouette of the clusters in ``X`` (noise left out;
    NaN with fewer than two clusters); the number of clusters and the share of noise."""
    clustered = labels >= 0
    n_clusters = len(np.unique(labels[clustered]))
    silhouette = float("nan")
    if 2 <= n_clusters < clustered.sum():
        silhouette = float(silhouette_score(X[clustered], labels[clustered]))
    return {
        "ari": float(adjusted_rand_score(y_true, labels)),
        "nmi": float(normalized_mutual_info_score(y_true, labels)),
        "silhouette": silhouette,
        "n_clusters": float(n_clusters),
        "noise_share": float(1 - clustered.mean()),
    }


def evaluate(
    embeddings: Mapping[str, np.ndarray],
    y_true: np.ndarray,
    *,
    seed: int,
    profile: str,
    methods: Sequence[str] = METHODS,
    label_fractions: Mapping[str, float] | None = None,
    n_labels: Mapping[str, int] | None = None,
    split: str = "test",
    **params,
) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Cluster each (preprocessed) embedding with each method; tidy result rows and the labels.

    ``label_fractions``/``n_labels`` give, per embedding, how many training labels made
    it (0 for pixels and self-supervised encoders, the default).
    """
    label_fractions, n_labels = dict(label_fractions or {}), dict(n_labels or {})
    records, assignments = [], {}
    for name, X in embeddings.items():
        for method in methods:
            start = time.perf_counter()
            labels, _ = cluster(X, method, seed=seed, **params)
            seconds = time.perf_counter() - start
            assignments[name, method] = labels
            records += results.rows(scores(y_true, labels, X), method=method, model=name,
                                    label_fraction=label_fractions.get(name, 0.0), n_labels=n_labels.get(name, 0),
                                    seed=seed, split=split, wall_seconds=seconds, profile=profile)  # fmt: skip
    return results.frame(records), assignments


@ONE_THREAD
def k_sweep(X: np.ndarray, ks: Iterable[int] = range(2, 16), seed: int = 0) -> pd.DataFrame:
    """KMeans inertia (the elbow) and silhouette for each ``k``."""
    records = []
    for k in ks:
        model = KMeans(k, n_init=4, random_state=seed).fit(X)
        records.append({"k": k, "inertia": model.inertia_, "silhouette": silhouette_score(X, model.labels_)})
    return pd.DataFrame(records)


def contingency(y_true: np.ndarray, labels: np.ndarray, class_names: Sequence[str] = SHORT_NAMES) -> pd.DataFrame:
    """Images per (true class, cluster); clusters ordered by their majority class, noise last."""
    table = pd.crosstab(pd.Categorical([class_names[c] for c in y_true], categories=list(class_names)),
                        pd.Series(labels, name="cluster"), dropna=False)  # fmt: skip
    table.index.name = "class"
    order = sorted(table.columns, key=lambda c: (c < 0, int(np.argmax(table[c].to_numpy())), -table[c].max()))
    return table[order].rename(columns={-1: "noise"})


@ONE_THREAD
def project(
    X: np.ndarray, method: str, *, seed: int = 0, max_points: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D map of ``X`` (``pca``, ``tsne`` or ``umap``) and the indices of the points in it
    (a random subset of ``max_points`` when ``X`` is larger, to bound t-SNE's cost)."""
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(PROJECTIONS)}")
    indices = np.arange(len(X))
    if max_points is not None and len(X) > max_points:
        indices = np.sort(np.random.default_rng(seed).choice(len(X), max_points, replace=False))
    points = X[indices]
    if method == "pca":
        coords = PCA(2, random_state=seed).fit_transform(points)
    elif method == "tsne":
        coords = TSNE(2, perplexity=min(30.0, (len(points) - 1) / 3), init="pca", random_state=seed).fit_transform(
            points
        )
    else:
        import umap  # imported here: numba compiles it on first use, which only this map needs

        coords = umap.UMAP(n_neighbors=min(15, len(points) - 1), random_state=seed, n_jobs=1).fit_transform(points)
    return coords, indices
