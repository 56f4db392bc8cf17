"""Labelled subsets of the training split: stratified, deterministic per seed and nested.

For one seed every class is shuffled once; a subset takes the first ``k_c`` images of
each class. Because ``k_c`` only grows with the fraction, the 1 % subset lies inside the
5 % subset, which lies inside the 10 % subset, so learning curves compare like with like.
"""

from __future__ import annotations

import numpy as np

UNLABELLED = -1


def _class_orders(labels: np.ndarray, seed: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}


def per_class_counts(labels: np.ndarray, fraction: float) -> dict[int, int]:
    """Images to label per class for ``fraction``: rounded, at least one per class."""
    if not 0 < fraction <= 1:
        raise ValueError(
            f"label fraction must be in (0, 1], got {fraction}; use e.g. 0.01 for 1 % of the training labels."
        )
    classes, counts = np.unique(labels, return_counts=True)
    return {int(c): max(1, round(fraction * n)) for c, n in zip(classes, counts, strict=True)}


def labelled_subset(
    labels: np.ndarray,
    *,
    fraction: float | None = None,
    per_class: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Sorted indices of the labelled images, chosen by ``fraction`` or ``per_class`` count."""
    labels = np.asarray(labels)
    if (fraction is None) == (per_class is None):
        raise ValueError("give exactly one of fraction= (e.g. 0.05) or per_class= (e.g. 10)")
    if fraction is not None:
        counts = per_class_counts(labels, fraction)
    else:
        if per_class < 1:
            raise ValueError(f"per_class must be at least 1, got {per_class}")
        classes, available = np.unique(labels, return_counts=True)
        short = {int(c): int(n) for c, n in zip(classes, available, strict=True) if n < per_class}
        if short:
            raise ValueError(
                f"per_class={per_class} asks for more images than these classes have: {short} "
                "(class: images); lower per_class or use fraction=."
            )
        counts = dict.fromkeys(map(int, classes), per_class)
    orders = _class_orders(labels, seed)
    chosen = np.concatenate([orders[c][:k] for c, k in counts.items()])
    return np.sort(chosen)


def mask_labels(labels: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """A copy of ``labels`` with every image outside ``labelled`` set to -1 (scikit-learn's
    convention for unlabelled samples in semi-supervised estimators)."""
    masked = np.full_like(np.asarray(labels), UNLABELLED)
    masked[labelled] = np.asarray(labels)[labelled]
    return masked
