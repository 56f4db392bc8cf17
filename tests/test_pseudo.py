from __future__ import annotations

import numpy as np
import pytest

from bloodssl.pseudo import select_confident

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
