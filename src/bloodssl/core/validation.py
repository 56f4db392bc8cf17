"""Checks of the inputs every estimator shares: images, labels and thresholds."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import NotFittedError


def as_images(X) -> np.ndarray:
    """``X`` checked as uint8 images (N, H, W, C) with C = 3 (RGB) or 1 (grey; (N, H, W) gets the axis)."""
    X = np.asarray(X)
    if X.ndim == 3 and X.dtype == np.uint8:
        X = X[..., None]
    if X.ndim != 4 or X.shape[-1] not in (1, 3) or X.dtype != np.uint8:
        raise ValueError(f"X must be uint8 images of shape (N, H, W, 3) or (N, H, W, 1); got {X.shape} {X.dtype}")
    return X


def as_labels(y, n: int, n_classes: int | None, name: str = "y") -> np.ndarray:
    """``y`` as int64 class indices, one per image (-1 for unlabelled), or a ``ValueError``
    naming what is wrong and the fix: floats (also whole ones, which usually mean a slip
    such as ``y - 0.5`` or a NaN), booleans and strings are refused rather than truncated.
    ``n_classes=None`` checks only that no label is below -1."""
    y = np.asarray(y)
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y  # medmnist's (N, 1) labels
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} has shape {y.shape} for {n} images; expected one label per image (-1 for unlabelled)")
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        hint = " (it holds NaN: mark unlabelled images with -1)" if y.dtype.kind == "f" and np.isnan(y).any() else ""
        raise ValueError(
            f"{name} must hold integer class indices, got dtype {y.dtype}{hint}; pass 0, 1, 2, ... "
            f"(and -1 for unlabelled), e.g. np.asarray({name}).astype(int) for whole-number floats"
        )
    if n_classes is None:
        if y.size and y.min() < -1:
            raise ValueError(f"{name}: labels must be class indices 0, 1, 2, ..., or -1 for unlabelled; got {y.min()}")
        return y.astype(np.int64)
    if y.size and (y.min() < -1 or y.max() >= n_classes):
        raise ValueError(
            f"{name}: labels must be in 0..{n_classes - 1}, or -1 for unlabelled; got {y.min()}..{y.max()}"
        )
    return y.astype(np.int64)


def infer_n_classes(n_classes: int | None, *labels: np.ndarray | None) -> int:
    """``n_classes`` if given, else one more than the largest label of ``labels`` (the
    labelled, validation and hidden labels a fit sees), as scikit-learn infers classes from ``y``."""
    if n_classes is not None:
        return int(n_classes)
    largest = max((int(np.max(y)) for y in labels if y is not None and np.size(y)), default=-1)
    if largest < 0:
        raise ValueError("y has no labelled image (every label is -1); label at least one per class")
    return largest + 1


def warn_missing_classes(y: np.ndarray, n_classes: int, name: str = "y", stacklevel: int = 3) -> None:
    """Warn (``UserWarning``) when the labelled images of ``y`` (labels >= 0) leave out
    some of the ``n_classes`` classes, or are all of one class: the model can never predict
    a class it saw no image of. With ``n_classes`` inferred from ``y`` (its largest label
    plus one) only the classes in between can be missing."""
    present = np.unique(y[y >= 0])
    missing = np.setdiff1d(np.arange(n_classes), present)
    if len(missing):
        warnings.warn(
            f"{name}'s labelled images cover classes {present.tolist()} of {n_classes}; the model can never "
            f"predict the others ({_listed(missing)}). Fix: label at least one image per class",
            UserWarning,
            stacklevel=stacklevel,
        )
    elif len(present) == 1:
        warnings.warn(
            f"{name}'s labelled images are all of class {present[0]}; the model can only ever predict it. "
            "Fix: label images of at least two classes",
            UserWarning,
            stacklevel=stacklevel,
        )


def _listed(classes: np.ndarray, shown: int = 10) -> str:
    more = f", ... ({len(classes)} in all)" if len(classes) > shown else ""
    return ", ".join(map(str, classes[:shown].tolist())) + more


def check_threshold(value: float, name: str = "threshold") -> None:
    """A confidence threshold must lie in (0, 1]."""
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}; e.g. 0.97 keeps only very confident predictions")


def check_fitted(estimator, attribute: str) -> None:
    """Raise scikit-learn's ``NotFittedError`` (naming the estimator and the fix) unless
    ``estimator`` has the fitted ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call fit(X, y) before predicting or transforming"
        )
