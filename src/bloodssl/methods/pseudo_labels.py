"""Which predictions become labels: confidence thresholds, per-class thresholds and top-k
(temperature scaling of the confidences is ``bloodssl.core.calibration``)."""

from __future__ import annotations

import numpy as np

from bloodssl.core.validation import check_threshold

SELECTIONS = ("threshold", "per_class", "top_k")


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
        check_threshold(float(value))
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


# -- confidences -------------------------------------------------------------------------------


def per_class_thresholds(proba: np.ndarray, y: np.ndarray, precision: float = 0.97) -> np.ndarray:
    """One confidence threshold per class, tuned on held-out labels ``y`` (the validation split).

    For class ``c`` it is the lowest confidence at which the predictions of ``c`` at least
    that confident are still ``precision`` correct; 1.0 (only certain predictions) where no
    confidence reaches it. Easy classes get low thresholds, confusable ones high.
    """
    check_threshold(precision, "precision")
    proba, y = np.asarray(proba), np.asarray(y)
    predicted, confidence = proba.argmax(1), proba.max(1)
    thresholds = np.ones(proba.shape[1])
    for label in range(proba.shape[1]):
        rows = np.flatnonzero(predicted == label)
        order = rows[np.argsort(-confidence[rows], kind="stable")]
        running = np.cumsum(y[order] == label) / np.arange(1, len(order) + 1)
        reached = np.flatnonzero(running >= precision)
        if len(reached):
            thresholds[label] = confidence[order[reached[-1]]]
    return thresholds
