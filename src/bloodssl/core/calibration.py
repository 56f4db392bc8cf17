"""Calibration: do a model's confidences mean what they say?

``expected_calibration_error`` and ``reliability`` measure it (Guo et al., 2017: equal-width
confidence bins, 15 by default); ``fit_temperature`` and ``sharpen`` fix it with one
parameter fitted on held-out labels (temperature scaling), which leaves every predicted
class, and so the accuracy, unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _checked(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y)
    if proba.ndim != 2 or len(proba) != len(y):
        raise ValueError(f"proba must be (n_images, n_classes) with one label per row; got {proba.shape} and "
                         f"{len(y)} labels")  # fmt: skip
    return proba, y


def reliability(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Per confidence bin (equal width on (0, 1]): its edges, the number of images, their
    mean confidence (top-class probability) and their accuracy; empty bins are kept with
    ``count`` 0, so a reliability diagram shows where there are no predictions."""
    proba, y = _checked(proba, y)
    confidence, correct = proba.max(1), proba.argmax(1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(which, confidence, n_bins) / count
        accuracy = np.bincount(which, correct, n_bins) / count
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "count": count, "confidence": mean_confidence,
                         "accuracy": accuracy})  # fmt: skip


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """ECE: the gap between accuracy and mean confidence in each bin of ``reliability``,
    averaged with the bins' shares of the images (0 = perfectly calibrated)."""
    bins = reliability(proba, y, n_bins)
    filled = bins[bins["count"] > 0]
    return float((filled["count"] * (filled["accuracy"] - filled["confidence"]).abs()).sum() / bins["count"].sum())


def sharpen(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``proba`` re-tempered: ``softmax(log(proba) / temperature)``; below 1 sharpens, above 1 softens."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}; 1 leaves the probabilities unchanged")
    logits = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray, grid: np.ndarray | None = None) -> float:
    """Temperature scaling (Guo et al., 2017): the temperature that minimises the negative
    log-likelihood of held-out labels ``y`` under ``sharpen(proba, temperature)``."""
    proba, y = _checked(proba, y)
    grid = np.geomspace(0.05, 5.0, 200) if grid is None else np.asarray(grid)
    rows = np.arange(len(y))
    nll = [-np.log(sharpen(proba, t)[rows, y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])
