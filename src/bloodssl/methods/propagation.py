"""Graph-based semi-supervised learning on embeddings, made inductive.

``GraphClassifier(method="spreading", kernel="knn").fit(X, y)`` runs scikit-learn's
``LabelSpreading`` (or ``LabelPropagation``) on a graph of the training embeddings, where
``y`` is -1 for unlabelled rows, then fits an ordinary classifier (logistic regression or
kNN) on the propagated labels; ``predict``/``predict_proba`` apply that classifier to new
embeddings, so the test split is never part of the graph. ``sweep`` runs every label
fraction and seed, with each method's kernel parameters chosen on the validation split.
"""

from __future__ import annotations

import functools
import itertools
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.neighbors import KNeighborsClassifier, kneighbors_graph
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelPropagation, LabelSpreading
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from bloodssl import predictions, results
from bloodssl.core.validation import check_fitted
from bloodssl.data import N_CLASSES, SHORT_NAMES
from bloodssl.data.splits import labelled_subset, mask_labels
from bloodssl.methods import clustering
from bloodssl.methods.registry import register

METHODS = ("propagation", "spreading")
KERNELS = ("rbf", "knn")
CLASSIFIERS = ("logistic", "knn")

#: Candidate kernel parameters, tried on the validation split (for embeddings scaled by
#: ``clustering.reduce``: unit-length rows, squared distances in [0, 4]; on the SimCLR
#: embeddings the validation split picks gamma 100-1000 and 5-20 neighbours).
GRID: dict[str, dict[str, list]] = {
    "rbf": {"gamma": [100.0, 300.0, 1000.0]},
    "knn": {"n_neighbors": [5, 10, 20]},
    "alpha": {"alpha": [0.2, 0.8]},
}


def symmetric_knn(X: np.ndarray, Y: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """The kNN graph of ``X`` with an edge where either end is among the other's ``n_neighbors``
    nearest rows (``Y`` is ``X``: the call scikit-learn makes for a callable kernel).

    scikit-learn's own ``knn`` kernel is directed (row i lists i's neighbours), so a small
    group whose neighbours all lie inside it is never reached by a label outside it; the
    symmetric graph of the label-propagation papers has no such trap."""
    graph = kneighbors_graph(X, n_neighbors, mode="connectivity", include_self=False)
    return graph.maximum(graph.T).tocsr()


@register("graph")
class GraphClassifier(ClassifierMixin, BaseEstimator):
    """Label propagation/spreading on the training graph, then an inductive classifier.

    ``method``: ``propagation`` (hard clamping of the given labels) or ``spreading``
    (soft clamping with ``alpha``, the share of a label a node takes from its neighbours).
    ``kernel``: ``rbf`` (dense, width ``gamma``) or ``knn`` (sparse, ``n_neighbors``,
    symmetrised: see ``symmetric_knn``).
    ``classifier``: ``logistic`` or ``knn``, fitted on the propagated training labels
    (the given labels where there is one). Rows that no label reaches are left out of it.

    The rbf graph is a dense n x n matrix (1.1 GB per copy for the 11,959 training
    images, and every iteration reads all of it), so at most ``max_dense`` rows enter it:
    every labelled row and a random (``seed``) sample of the others; rows left out get
    no propagated label (-1 in ``transduction_``). Measured on the SimCLR embeddings:
    LabelPropagation runs its 1,000 iterations in 4-16 s with 2,000 rows and 30-45 s
    with 3,000, at the same validation accuracy. ``tol`` is small because scikit-learn
    stops when the summed change is below it, and label spreading's change shrinks like
    ``alpha ** iteration``: with its default 1e-3 rows a few hops from a label are never reached.
    ``blas_threads`` caps BLAS while fitting and predicting: on two shared cores the small
    matrix products here spent most of their time in OpenBLAS threads waiting for each
    other (a logistic regression took 22 s of CPU on two threads, 0.13 s on one).
    """

    def __init__(
        self,
        method: str = "spreading",
        kernel: str = "knn",
        gamma: float = 10.0,
        n_neighbors: int = 10,
        alpha: float = 0.2,
        max_iter: int = 1000,
        tol: float = 1e-6,
        max_dense: int = 2000,
        classifier: str = "logistic",
        n_classes: int = N_CLASSES,
        seed: int = 0,
        blas_threads: int | None = 1,
    ):
        self.method = method
        self.kernel = kernel
        self.gamma = gamma
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.max_dense = max_dense
        self.classifier = classifier
        self.n_classes = n_classes
        self.seed = seed
        self.blas_threads = blas_threads

    def _check_params(self) -> None:
        for name, value, choices in (("method", self.method, METHODS), ("kernel", self.kernel, KERNELS),
                                     ("classifier", self.classifier, CLASSIFIERS)):  # fmt: skip
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.gamma <= 0 or self.n_neighbors < 1:
            raise ValueError(f"gamma must be positive and n_neighbors >= 1, got {self.gamma}, {self.n_neighbors}")

    def _graph_model(self) -> LabelPropagation | LabelSpreading:
        kernel = functools.partial(symmetric_knn, n_neighbors=self.n_neighbors) if self.kernel == "knn" else "rbf"
        shared = dict(kernel=kernel, gamma=self.gamma, max_iter=self.max_iter, tol=self.tol)
        if self.method == "spreading":
            return LabelSpreading(alpha=self.alpha, **shared)
        return LabelPropagation(**shared)

    def _graph_rows(self, labelled: np.ndarray) -> np.ndarray:
        """Indices of the rows in the graph: all, or for rbf at most ``max_dense``."""
        if self.kernel != "rbf" or len(labelled) <= self.max_dense:
            return np.arange(len(labelled))
        others = np.flatnonzero(~labelled)
        room = max(self.max_dense - int(labelled.sum()), 0)
        sample = np.random.default_rng(self.seed).choice(others, min(room, len(others)), replace=False)
        return np.sort(np.concatenate([np.flatnonzero(labelled), sample]))

    def fit(self, X, y) -> GraphClassifier:
        """Propagate the labels of ``y`` (-1: unlabelled) over ``X``, then fit the classifier."""
        self._check_params()
        with threadpool_limits(self.blas_threads):
            return self._fit(X, y)

    def _fit(self, X, y) -> GraphClassifier:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).reshape(-1)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(f"X must be (N, dim) with one label per row; got X {X.shape} and y {y.shape}")
        if y.min() < -1 or y.max() >= self.n_classes:
            raise ValueError(
                f"labels must be in 0..{self.n_classes - 1}, or -1 for unlabelled; got {y.min()}..{y.max()}"
            )
        labelled = y >= 0
        if not labelled.any():
            raise ValueError("y has no labelled row (every label is -1); label at least one per class")
        self.classes_ = np.arange(self.n_classes)
        if self.kernel == "knn" and self.n_neighbors >= len(X):
            raise ValueError(f"n_neighbors={self.n_neighbors} needs more than {len(X)} rows; lower it")
        rows = self._graph_rows(labelled)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            graph = self._graph_model().fit(X[rows], y[rows])
        distributions = np.zeros((len(X), self.n_classes))
        distributions[np.ix_(rows, graph.classes_)] = graph.label_distributions_
        reached = np.isfinite(distributions).all(1) & (distributions.sum(1) > 0)
        transduction = np.where(labelled, y, np.nan_to_num(distributions).argmax(1))
        self.label_distributions_ = distributions
        self.transduction_ = np.where(reached | labelled, transduction, -1)
        self.reached_share_ = float((reached | labelled)[rows].mean())
        self.n_iter_ = int(graph.n_iter_)

        keep = self.transduction_ >= 0
        self.classifier_ = inductive(self.classifier, int(keep.sum())).fit(X[keep], self.transduction_[keep])
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the inductive classifier, one column per class."""
        check_fitted(self, "classifier_")
        proba = np.zeros((len(X), self.n_classes))
        with threadpool_limits(self.blas_threads):
            proba[:, self.classifier_.classes_] = self.classifier_.predict_proba(np.asarray(X, dtype=np.float64))
        return proba

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(1)


def candidates(method: str, kernel: str, grid: Mapping[str, Mapping[str, list]] = GRID) -> list[dict]:
    """Every parameter combination of ``grid`` that applies to ``method`` and ``kernel``."""
    axes = dict(grid[kernel])
    if method == "spreading":
        axes.update(grid["alpha"])
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


def _metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    labels = np.arange(n_classes)
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0))}  # fmt: skip


def select(
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    method: str,
    kernel: str,
    grid: Mapping[str, Mapping[str, list]] = GRID,
    **params,
) -> tuple[GraphClassifier, dict, float]:
    """The ``GraphClassifier`` with the best validation accuracy over ``candidates``; its
    parameters and that accuracy."""
    best = (None, {}, -1.0)
    for candidate in candidates(method, kernel, grid):
        model = GraphClassifier(method=method, kernel=kernel, **candidate, **params).fit(X, y)
        score = float(accuracy_score(y_val, model.predict(X_val)))
        if score > best[2]:
            best = (model, candidate, score)
    return best


def inductive(classifier: str, n_rows: int) -> Pipeline | KNeighborsClassifier:
    """The unfitted inductive classifier called ``classifier``: ``logistic`` (standardised
    features, then logistic regression) or ``knn`` (10 neighbours)."""
    if classifier == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if classifier == "knn":
        return KNeighborsClassifier(n_neighbors=min(10, n_rows))
    raise ValueError(f"unknown classifier {classifier!r}; choose one of {', '.join(CLASSIFIERS)}")


def labelled_only(X: np.ndarray, y: np.ndarray, classifier: str = "logistic") -> Pipeline | KNeighborsClassifier:
    """The baseline without propagation: the inductive classifier on the labelled rows alone."""
    labelled = np.asarray(y) >= 0
    with threadpool_limits(1):
        return inductive(classifier, int(labelled.sum())).fit(X[labelled], y[labelled])


def _rows(fitted: ClassifierMixin, X: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
          n_classes: int, kept: list | None, **keys) -> list:  # fmt: skip
    out = []
    for split in ("val", "test"):
        with threadpool_limits(1):
            predicted = fitted.predict(X[split])
        out += results.rows(_metrics(labels[split], predicted, n_classes), split=split, **keys)
        if kept is not None:
            kept.append(predictions.of_labels(labels[split], predicted, n_classes, split, **keys))
    return out


def sweep(
    embeddings: Mapping[str, Mapping[str, np.ndarray] | Callable[[float, int], Mapping[str, np.ndarray]]],
    labels: Mapping[str, np.ndarray],
    *,
    fractions: Iterable[float],
    seeds: Iterable[int],
    profile: str,
    n_components: int = 32,
    methods: Sequence[str] = METHODS,
    kernels: Sequence[str] = KERNELS,
    grid: Mapping[str, Mapping[str, list]] = GRID,
    class_names: Sequence[str] = SHORT_NAMES,
    kept: list | None = None,
    **params,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every (embedding, fraction, seed, method, kernel), tuned on val, scored on val and test.

    ``embeddings[name]`` maps each split to its features, or is a function of
    ``(fraction, seed)`` returning that mapping (an embedding learnt from that labelled
    subset, e.g. ``embed.labelled_cnn_embeddings``). Features go through
    ``clustering.reduce`` (unit-length rows, PCA to ``n_components`` fitted on train).
    ``labels[split]`` are the true labels; only the labelled subset of the training labels
    is shown to the methods; ``class_names`` name the dataset's classes. Returns the tidy
    results, the chosen parameters, and the class shares of the propagated training labels
    next to the true shares. Each run's predicted labels of val and test are appended to
    ``kept`` if given (``bloodssl.predictions``).
    """
    fixed = {name: clustering.reduce(e, n_components) for name, e in embeddings.items() if not callable(e)}
    train_labels = labels["train"]
    jobs = list(itertools.product(embeddings, fractions, seeds))
    records, chosen, shares = [], [], []
    n_classes = len(class_names)
    true_share = np.bincount(train_labels, minlength=n_classes) / len(train_labels)
    for name, fraction, seed in tqdm(jobs, desc="propagation", unit="run"):
        X = fixed[name] if name in fixed else clustering.reduce(embeddings[name](fraction, seed), n_components)
        labelled = labelled_subset(train_labels, fraction=fraction, seed=seed)
        y = mask_labels(train_labels, labelled)
        keys = dict(model=name, label_fraction=fraction, n_labels=len(labelled), seed=seed, profile=profile)
        start = time.perf_counter()
        model = labelled_only(X["train"], y)
        seconds = time.perf_counter() - start
        records += _rows(model, X, labels, n_classes, kept, method="labelled_only", wall_seconds=seconds, **keys)
        for method, kernel in itertools.product(methods, kernels):
            start = time.perf_counter()
            model, best, _ = select(X["train"], y, X["val"], labels["val"], method=method, kernel=kernel, grid=grid,
                                    seed=seed, n_classes=n_classes, **params)  # fmt: skip
            name, setting = f"label_{method}", {"kernel": kernel}
            seconds = time.perf_counter() - start
            records += _rows(
                model, X, labels, n_classes, kept, method=name, params=setting, wall_seconds=seconds, **keys
            )
            label = results.display_name(name, setting)
            chosen.append({"method": label, **keys, **best})
            found = model.transduction_[(y < 0) & (model.transduction_ >= 0)]
            share = np.bincount(found, minlength=n_classes) / max(len(found), 1)
            shares += [{"method": label, **keys, "class": class_names[c], "propagated": share[c],
                        "true": true_share[c]} for c in range(n_classes)]  # fmt: skip
    return results.frame(records), pd.DataFrame(chosen), pd.DataFrame(shares)
