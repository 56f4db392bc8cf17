from __future__ import annotations

import numpy as np
import pytest

from bloodssl.data.splits import labelled_subset, mask_labels

LABELS = np.repeat(np.arange(8), [85, 218, 108, 202, 84, 99, 233, 164])


def test_subsets_are_nested_for_one_seed():
    small = labelled_subset(LABELS, fraction=0.01, seed=3)
    medium = labelled_subset(LABELS, fraction=0.05, seed=3)
    large = labelled_subset(LABELS, fraction=0.10, seed=3)
    assert set(small) < set(medium) < set(large)


def test_subsets_are_stratified_with_every_class():
    chosen = labelled_subset(LABELS, fraction=0.05, seed=0)
    counts = np.bincount(LABELS[chosen], minlength=8)
    assert counts.min() >= 1
    expected = np.maximum(1, np.round(0.05 * np.bincount(LABELS)))
    assert np.array_equal(counts, expected)


def test_same_seed_same_subset_other_seed_other_subset():
    first = labelled_subset(LABELS, fraction=0.1, seed=1)
    assert np.array_equal(first, labelled_subset(LABELS, fraction=0.1, seed=1))
    assert not np.array_equal(first, labelled_subset(LABELS, fraction=0.1, seed=2))


def test_full_fraction_is_every_image():
    assert np.array_equal(labelled_subset(LABELS, fraction=1.0), np.arange(len(LABELS)))


def test_per_class_count():
    chosen = labelled_subset(LABELS, per_class=10, seed=0)
    assert np.bincount(LABELS[chosen]).tolist() == [10] * 8


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5])
def test_fraction_outside_unit_interval_is_refused(fraction):
    with pytest.raises(ValueError, match=rf"label fraction must be in \(0, 1\], got {fraction}"):
        labelled_subset(LABELS, fraction=fraction)


def test_count_a_class_cannot_supply_names_the_class():
    expected = r"per_class=90 asks for more images than these classes have: \{0: 85, 4: 84\}"
    with pytest.raises(ValueError, match=expected):
        labelled_subset(LABELS, per_class=90)


def test_zero_per_class_is_refused():
    with pytest.raises(ValueError, match="per_class must be at least 1"):
        labelled_subset(LABELS, per_class=0)


def test_fraction_and_count_are_exclusive():
    with pytest.raises(ValueError, match="exactly one of"):
        labelled_subset(LABELS, fraction=0.1, per_class=3)
    with pytest.raises(ValueError, match="exactly one of"):
        labelled_subset(LABELS)


def test_mask_labels_hides_the_unlabelled():
    masked = mask_labels(LABELS, np.array([0, 5]))
    assert (masked == -1).sum() == len(LABELS) - 2
    assert masked[0] == LABELS[0] and masked[5] == LABELS[5]
