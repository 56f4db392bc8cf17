"""Checks of the inputs every estimator shares: images, labels and thresholds."""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError


def as_images(X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 4 or X.shape[-1] != 3 or X.dtype != np.uint8:
        raise ValueError(f"X must be uint8 images of shape (N, H, W, 3); got {X.shape} {X.dtype}")
    return X


def as_labels(y, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise ValueError(f"y has {len(y)} labels for {n} images")
    if y.size and (y.min() < -1 or y.max() >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1}, or -1 for unlabelled; got {y.min()}..{y.max()}")
    return y.astype(np.int64)


def check_threshold(value: float, name: str = "threshold") -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}; e.g. 0.97 keeps only very confident predictions")


def check_fitted(estimator, attribute: str) -> None:
    """Raise scikit-learn's ``NotFittedError`` (naming the estimator and the fix) unless
    ``estimator`` has the fitted ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call fit(X, y) before predicting or transforming"
        )
