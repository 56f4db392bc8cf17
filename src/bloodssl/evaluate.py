"""Classification metrics for one set of predictions."""

from __future__ import annotations

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

from bloodssl.data import SHORT_NAMES


@dataclass(frozen=True)
class Evaluation:
    """Headline metrics, the confusion matrix (rows: true class) and per-class scores."""

    metrics: dict[str, float]
    confusion: np.ndarray
    per_class: pd.DataFrame


def evaluate(y_true: np.ndarray, proba: np.ndarray, class_names=SHORT_NAMES) -> Evaluation:
    """Accuracy, macro-F1, balanced accuracy and macro one-vs-rest AUC of ``proba``.

    AUC is NaN when ``y_true`` lacks a class (a one-vs-rest curve needs both sides).
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba)
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise ValueError(f"proba must have shape ({len(y_true)}, n_classes); got {proba.shape}")
    labels = np.arange(proba.shape[1])
    y_pred = proba.argmax(1)
    if len(np.unique(y_true)) == proba.shape[1]:
        auc = float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))
    else:
        auc = float("nan")
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "auc": auc,
    }
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    names = list(class_names) if len(class_names) == len(labels) else [str(c) for c in labels]
    per_class = pd.DataFrame({"class": names, "precision": precision, "recall": recall, "f1": f1, "support": support})
    return Evaluation(metrics, confusion_matrix(y_true, y_pred, labels=labels), per_class)
