"""Confidence-threshold pseudo-labelling."""

from __future__ import annotations

import numpy as np


def _check_threshold(value: float, name: str = "threshold") -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}; e.g. 0.97 keeps only very confident predictions")


def select_confident(
    proba: np.ndarray,
    threshold: float | np.ndarray = 0.97,
    *,
    candidates: np.ndarray | None = None,
    top_k_per_class: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into ``proba``) and predicted labels of the rows confident enough to pseudo-label.

    ``threshold`` is one number or one per class (applied to the predicted class).
    ``candidates`` (indices or a boolean mask) restricts the eligible rows, e.g. to the
    unlabelled images not queried this round. ``top_k_per_class`` keeps at most the ``k``
    most confident rows of each predicted class, a class-balanced selection that stops
    the common classes from swamping the rare ones.
    """
    proba = np.asarray(proba)
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=float), (proba.shape[1],))
    for value in np.unique(thresholds):
        _check_threshold(float(value))
    if top_k_per_class is not None and top_k_per_class < 1:
        raise ValueError(f"top_k_per_class must be at least 1, got {top_k_per_class}")
    eligible = np.zeros(len(proba), bool)
    if candidates is None:
        eligible[:] = True
    else:
        eligible[np.asarray(candidates)] = True
    predicted = proba.argmax(1)
    confidence = proba.max(1)
    chosen = np.flatnonzero(eligible & (confidence >= thresholds[predicted]))
    if top_k_per_class is not None:
        keep = []
        for label in np.unique(predicted[chosen]):
            of_class = chosen[predicted[chosen] == label]
            keep.append(of_class[np.argsort(-confidence[of_class], kind="stable")[:top_k_per_class]])
        chosen = np.sort(np.concatenate(keep)) if keep else chosen
    return chosen, predicted[chosen]
