from __future__ import annotations

import numpy as np
import pytest

from bloodssl.core.calibration import fit_temperature, sharpen
from bloodssl.methods.pseudo_labels import per_class_thresholds, select_confident

PROBA = np.array(
    [
        [0.98, 0.01, 0.01],
        [0.60, 0.30, 0.10],
        [0.01, 0.99, 0.00],
        [0.05, 0.05, 0.90],
        [0.97, 0.02, 0.01],
    ]
)


def test_threshold_keeps_only_confident_rows():
    indices, labels = select_confident(PROBA, 0.95)
    assert indices.tolist() == [0, 2, 4] and labels.tolist() == [0, 1, 0]


def test_per_class_thresholds_apply_to_the_predicted_class():
    indices, _ = select_confident(PROBA, np.array([0.99, 0.95, 0.85]))
    assert indices.tolist() == [2, 3]


def test_candidates_exclude_other_rows():
    indices, _ = select_confident(PROBA, 0.95, candidates=np.array([2, 4]))
    assert indices.tolist() == [2, 4]
    mask = np.array([True, False, False, False, False])
    assert select_confident(PROBA, 0.95, candidates=mask)[0].tolist() == [0]


def test_top_k_per_class_balances_the_selection():
    indices, labels = select_confident(PROBA, 0.5, top_k_per_class=1)
    assert indices.tolist() == [0, 2, 3] and labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize("threshold", [0, 1.2, -0.5])
def test_threshold_outside_unit_interval_is_refused(threshold):
    with pytest.raises(ValueError, match=rf"threshold must be in \(0, 1\], got {threshold}"):
        select_confident(PROBA, threshold)


def test_top_k_must_be_positive():
    with pytest.raises(ValueError, match="top_k_per_class must be at least 1"):
        select_confident(PROBA, 0.5, top_k_per_class=0)


def test_sharpen_with_temperature_one_changes_nothing_and_below_one_sharpens():
    assert np.allclose(sharpen(PROBA, 1.0), PROBA / PROBA.sum(1, keepdims=True))
    sharper = sharpen(PROBA, 0.5)
    assert (sharper.argmax(1) == PROBA.argmax(1)).all() and (sharper.max(1) >= PROBA.max(1) - 1e-12).all()
    with pytest.raises(ValueError, match="temperature must be positive, got 0"):
        sharpen(PROBA, 0)


def test_fit_temperature_recovers_the_softening_of_calibrated_probabilities():
    rng = np.random.default_rng(0)
    calibrated = rng.dirichlet(np.full(4, 0.3), size=4000)
    y = np.array([rng.choice(4, p=row) for row in calibrated])
    softened = sharpen(calibrated, 2.0)  # an over-smoothed model: temperature 0.5 undoes it
    assert fit_temperature(softened, y) == pytest.approx(0.5, rel=0.1)
    assert fit_temperature(calibrated, y) == pytest.approx(1.0, rel=0.1)


def test_per_class_thresholds_are_the_lowest_confidence_that_keeps_the_precision():
    proba = np.array([[0.95, 0.05], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9], [0.4, 0.6]])
    y = np.array([0, 0, 0, 1, 1, 0])
    thresholds = per_class_thresholds(proba, y, precision=0.75)
    # class 0: 3/3 correct down to 0.8, 3/4 at 0.7 -> 0.7; class 1: 1/1 at 0.9, 1/2 at 0.6 -> 0.9
    assert thresholds.tolist() == [0.7, 0.9]
    assert per_class_thresholds(proba, y, precision=1.0).tolist() == [0.8, 0.9]


def test_per_class_threshold_is_one_where_no_confidence_reaches_the_precision():
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert per_class_thresholds(proba, np.array([1, 1]), precision=0.9).tolist() == [1.0, 0.8]
    with pytest.raises(ValueError, match=r"precision must be in \(0, 1\], got 1.5"):
        per_class_thresholds(proba, np.array([1, 1]), precision=1.5)
