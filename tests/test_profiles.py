"""Profiles: how big a run is, and the stratified subsets the smoke profile trains on."""

from __future__ import annotations

import numpy as np
import pytest

from bloodssl.data import Split
from bloodssl.profiles import PROFILES, get_profile


def split(name: str, per_class: int = 50, n_classes: int = 8) -> Split:
    labels = np.repeat(np.arange(n_classes), per_class)
    images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1).repeat(28, 1).repeat(28, 2).repeat(3, 3)
    return Split(name, images, labels)


def test_shrink_keeps_a_stratified_subset_of_the_profile_s_size():
    # break: take the first rows (one class), or ignore which split it is -> other counts
    smoke = get_profile("smoke")
    train, val = smoke.shrink(split("train"), seed=0), smoke.shrink(split("val"), seed=0)
    assert train.class_counts(8).tolist() == [smoke.train_per_class] * 8
    assert val.class_counts(8).tolist() == [smoke.eval_per_class] * 8


def test_shrink_takes_the_same_images_for_a_seed_and_others_for_another():
    smoke = get_profile("smoke")
    first, again, other = (smoke.shrink(split("train"), seed=s).images[:, 0, 0, 0] for s in (0, 0, 1))
    assert np.array_equal(first, again) and not np.array_equal(np.sort(first), np.sort(other))


def test_the_default_profile_keeps_every_image():
    whole = split("test")
    assert get_profile("default").shrink(whole) is whole


def test_seeds_start_at_the_first_one_and_an_unknown_profile_lists_the_choices():
    assert get_profile("default").seeds(4) == [4, 5, 6] and get_profile("smoke").seeds() == [0]
    assert set(PROFILES) == {"smoke", "default", "full"}
    with pytest.raises(ValueError, match="unknown profile 'tiny'; choose one of smoke, default, full"):
        get_profile("tiny")
