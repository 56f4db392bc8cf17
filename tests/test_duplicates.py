"""The duplicate audit finds planted duplicates among real cells, and nothing else."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import REAL_FILE, needs_real_data
from PIL import Image

from bloodssl import data
from bloodssl.data import duplicates


def jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


pytestmark = needs_real_data


@pytest.fixture(scope="module")
def cells() -> np.ndarray:
    return data.load_split("test", REAL_FILE).images[:300]


def test_planted_duplicates_are_found_across_and_within_splits_and_no_false_ones(cells):
    # break: compare only within a split, or count distance as anything but differing bits -> pairs missed or invented
    train = cells[:200].copy()
    test = cells[200:].copy()
    test[0] = train[5]  # exact copy across splits
    test[1] = np.clip(train[17].astype(int) + 4, 0, 255).astype(np.uint8)  # brighter
    test[2] = jpeg(train[40])  # re-encoded
    train[150] = train[3]  # exact copy within train
    pairs = duplicates.near_duplicates({"train": train, "test": test}, max_distance=4)
    found = set(pairs[["split_a", "index_a", "split_b", "index_b"]].itertuples(index=False, name=None))
    assert found == {("train", 5, "test", 0), ("train", 17, "test", 1), ("train", 40, "test", 2),
                     ("train", 3, "train", 150)}  # fmt: skip
    assert pairs.set_index(["split_b", "index_b"])["exact"].to_dict() == {
        ("test", 0): True, ("test", 1): False, ("test", 2): False, ("train", 150): True}  # fmt: skip
    assert duplicates.leaked(pairs, "test", others=("train",)).tolist() == [0, 1, 2]
    summary = duplicates.summary(pairs).set_index(["split_a", "split_b"])
    assert summary.loc[("train", "test")].tolist() == [3, 1] and summary.loc[("train", "train")].tolist() == [1, 1]


def test_hashes_are_64_bit_and_bad_input_names_the_fix(cells):
    hashes = duplicates.perceptual_hashes(cells[:10])
    assert hashes.dtype == np.uint64 and len(set(hashes.tolist())) == 10
    with pytest.raises(ValueError, match="must be uint8"):
        duplicates.perceptual_hashes(cells[:2].astype(np.float32))
    with pytest.raises(ValueError, match="out of 64"):
        duplicates.near_duplicates({"test": cells[:2]}, max_distance=65)
