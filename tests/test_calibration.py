"""Calibration: ECE and the reliability table on predictors whose calibration is known."""

from __future__ import annotations

import numpy as np
import pytest

from bloodssl.core.calibration import expected_calibration_error, fit_temperature, reliability, sharpen


def calibrated(n: int = 100_000, classes: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from those very probabilities: calibrated by construction."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(classes, 0.3), size=n)
    y = (proba.cumsum(1) > rng.random((n, 1))).argmax(1)
    return proba, y


def test_a_perfectly_calibrated_predictor_has_an_ece_of_about_zero_and_an_overconfident_one_does_not():
    # break: weight bins equally, or compare accuracy with the bin's centre -> the calibrated ECE is far from 0
    proba, y = calibrated()
    assert expected_calibration_error(proba, y) < 0.005
    assert expected_calibration_error(sharpen(proba, 0.5), y) > 0.05


def test_temperature_scaling_recovers_the_temperature_and_keeps_every_predicted_class():
    proba, y = calibrated(seed=1)
    overconfident = sharpen(proba, 0.4)
    temperature = fit_temperature(overconfident, y)
    assert temperature == pytest.approx(1 / 0.4, rel=0.05)
    fixed = sharpen(overconfident, temperature)
    assert np.array_equal(fixed.argmax(1), overconfident.argmax(1))
    assert expected_calibration_error(fixed, y) < 0.01


def test_the_reliability_table_of_a_hand_computed_case():
    proba = np.array([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.45, 0.55]])
    y = np.array([0, 1, 0, 1])
    bins = reliability(proba, y, n_bins=2)  # (0, 0.5] is empty; (0.5, 1] holds all four, confidence 0.75
    assert bins["count"].tolist() == [0, 4]
    assert bins.loc[1, "confidence"] == pytest.approx(0.75) and bins.loc[1, "accuracy"] == pytest.approx(0.75)
    assert expected_calibration_error(proba, y, n_bins=2) == pytest.approx(0.0)
    assert expected_calibration_error(proba, y, n_bins=10) == pytest.approx((0.05 + 0.9 + 0.4 + 0.45) / 4)
    with pytest.raises(ValueError, match="one label per row"):
        reliability(proba, y[:3])
