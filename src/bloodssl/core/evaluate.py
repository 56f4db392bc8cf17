"""Classification metrics for one set of predictions, and how the errors of several
classifiers on the same images overlap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)


@dataclass(frozen=True)
class Evaluation:
    """Headline metrics, the confusion matrix (rows: true class) and per-class scores, with
    the labels and probabilities they were computed from (kept as the run's predictions)."""

    metrics: dict[str, float]
    confusion: np.ndarray
    per_class: pd.DataFrame
    y_true: np.ndarray | None = None
    proba: np.ndarray | None = None


def score(metric: str, y_true: np.ndarray, proba: np.ndarray) -> float:
    """One of ``evaluate``'s headline metrics (``METRICS``) of ``proba`` against ``y_true``."""
    labels = np.arange(proba.shape[1])
    if metric == "auc":
        if len(np.unique(y_true)) < proba.shape[1]:
            return float("nan")  # a one-vs-rest curve needs both sides
        scores = proba[:, 1] if proba.shape[1] == 2 else proba  # scikit-learn takes the positive class's
        return float(roc_auc_score(y_true, scores, multi_class="ovr", average="macro", labels=labels))
    y_pred = proba.argmax(1)
    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    if metric == "macro_f1":
        return float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0))
    if metric == "balanced_accuracy":
        return float(balanced_accuracy_score(y_true, y_pred))
    raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")


#: the headline metrics ``evaluate`` computes (``score`` computes one alone)
METRICS = ("accuracy", "macro_f1", "balanced_accuracy", "auc")


def evaluate(y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str] | None = None) -> Evaluation:
    """Accuracy, macro-F1, balanced accuracy and macro one-vs-rest AUC of ``proba``; the
    per-class scores are named by ``class_names`` (default: the class indices).

    AUC is NaN when ``y_true`` lacks a class (a one-vs-rest curve needs both sides).
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba)
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise ValueError(f"proba must have shape ({len(y_true)}, n_classes); got {proba.shape}")
    labels = np.arange(proba.shape[1])
    y_pred = proba.argmax(1)
    metrics = {metric: score(metric, y_true, proba) for metric in METRICS}
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    names = [str(c) for c in labels] if class_names is None else list(class_names)
    if len(names) != len(labels):
        raise ValueError(f"class_names has {len(names)} names for {len(labels)} classes")
    per_class = pd.DataFrame({"class": names, "precision": precision, "recall": recall, "f1": f1, "support": support})
    return Evaluation(metrics, confusion_matrix(y_true, y_pred, labels=labels), per_class, y_true, proba)


def _errors(proba: Mapping[str, np.ndarray], y_true: np.ndarray) -> pd.DataFrame:
    """One boolean column per classifier: is its prediction of each image wrong?"""
    y_true = np.asarray(y_true)
    if not proba:
        raise ValueError("no classifier given; pass {name: probabilities} for at least one")
    errors = {}
    for name, p in proba.items():
        p = np.asarray(p)
        if p.ndim != 2 or len(p) != len(y_true):
            raise ValueError(f"proba[{name!r}] must have shape ({len(y_true)}, n_classes); got {p.shape}")
        errors[name] = p.argmax(1) != y_true
    return pd.DataFrame(errors)


def shared_errors(proba: Mapping[str, np.ndarray], y_true: np.ndarray) -> pd.DataFrame:
    """Row ``a``, column ``b``: the share of ``a``'s errors that ``b`` makes too (1 on the
    diagonal; NaN where ``a`` makes none). Near 1 everywhere means the classifiers fail on
    the same images, so no way of combining them can fix those."""
    errors = _errors(proba, y_true).to_numpy(dtype=float)
    both = errors.T @ errors
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = both / np.diag(both)[:, None]
    return pd.DataFrame(shares, index=list(proba), columns=list(proba))


def combined_accuracy(proba: Mapping[str, np.ndarray], y_true: np.ndarray) -> dict[str, float]:
    """Accuracy of the best single classifier, of the average of their probabilities (an
    ensemble), and of an oracle that is right wherever any of them is: the ceiling of any
    rule that picks one of their predictions per image."""
    errors = _errors(proba, y_true)
    ensemble = np.mean([np.asarray(p) for p in proba.values()], axis=0).argmax(1)
    return {
        "best_single": float(1 - errors.mean().min()),
        "ensemble": float((ensemble == np.asarray(y_true)).mean()),
        "any_right": float(1 - errors.all(axis=1).mean()),
    }
