from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REAL_FILE, make_arrays, needs_real_data
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from bloodssl import data
from bloodssl.core.io import md5sum


def test_class_names_come_from_medmnist():
    assert data.N_CLASSES == 8
    assert data.SHORT_NAMES[0] == "basophil"
    assert data.SHORT_NAMES[3] == "immature granulocytes"
    assert data.OFFICIAL_MD5 == "7053d0359d879ad8a5505303e11de1dc"


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(data.DataError, match=r"does not exist\. Run `make data`"):
        data.load_split("train", tmp_path / "absent.npz")


def test_wrong_md5_names_found_and_expected(small_npz):
    with pytest.raises(data.DataError) as error:
        data.load_split("train", small_npz)
    message = str(error.value)
    assert md5sum(small_npz) in message
    assert data.OFFICIAL_MD5 in message
    assert "make data" in message and "BLOODMNIST_NPZ" in message


def test_corrupt_file_is_reported(tmp_path):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(data.DataError, match="not a readable .npz"):
        data.load_split("train", path, md5=None)


def test_missing_keys_are_named(tmp_path):
    arrays = make_arrays()
    del arrays["val_images"], arrays["val_labels"]
    path = tmp_path / "noval.npz"
    np.savez(path, **arrays)
    assert len(data.load_split("train", path, md5=None)) == 64
    with pytest.raises(data.DataError, match="has no val_images, val_labels"):
        data.load_split("val", path, md5=None)


def test_wrong_image_shape_is_reported(tmp_path):
    arrays = make_arrays()
    arrays["train_images"] = np.zeros((64, 64, 64, 3), np.uint8)
    path = tmp_path / "big.npz"
    np.savez(path, **arrays)
    expected = r"train_images has shape \(64, 64, 64, 3\).*expected \(N, 28, 28, 3\)"
    with pytest.raises(data.DataError, match=expected):
        data.load_split("train", path, md5=None)


def test_label_count_mismatch_is_reported(tmp_path):
    arrays = make_arrays()
    arrays["test_labels"] = arrays["test_labels"][:10]
    path = tmp_path / "short.npz"
    np.savez(path, **arrays)
    with pytest.raises(data.DataError, match=r"test_labels has shape \(10, 1\) for 24 images"):
        data.load_split("test", path, md5=None)


def test_out_of_range_labels_are_reported(tmp_path):
    arrays = make_arrays()
    arrays["train_labels"][0] = 9
    path = tmp_path / "labels.npz"
    np.savez(path, **arrays)
    with pytest.raises(data.DataError, match=r"values 0\.\.9; expected 0\.\.7"):
        data.load_split("train", path, md5=None)


def test_unknown_split_lists_the_splits(small_npz):
    with pytest.raises(data.DataError, match="unknown split 'validation'.*train, val, test"):
        data.load_split("validation", small_npz, md5=None)


def test_dataset_batches_without_per_image_overhead(small_npz):
    split = data.load_split("train", small_npz, md5=None)
    dataset = data.BloodMNISTDataset(split)
    image, label = dataset[3]
    assert image.shape == (3, 28, 28) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1
    assert label == split.labels[3]
    loader = DataLoader(dataset, sampler=BatchSampler(SequentialSampler(dataset), 16, False), batch_size=None)
    images, labels = next(iter(loader))
    assert images.shape == (16, 3, 28, 28)
    assert torch.equal(labels, torch.tensor(split.labels[:16]))
    assert torch.allclose(images[5], dataset[5][0])


def test_fetch_uses_a_verified_user_copy(small_npz, tmp_path):
    dest = tmp_path / "raw" / "bloodmnist.npz"
    path = data.fetch(dest, small_npz, md5=md5sum(small_npz), routes=("existing", "user"), log=lambda _: None)
    assert path == dest and md5sum(dest) == md5sum(small_npz)
    assert not [p for p in dest.parent.iterdir() if p.name != dest.name], "no temporary files left behind"


def test_fetch_never_replaces_a_good_file_with_a_bad_one(small_npz, tmp_path):
    dest = tmp_path / "bloodmnist.npz"
    np.savez(dest, **make_arrays(seed=1))
    good = md5sum(dest)
    expected = r"(?s)could not get a verified bloodmnist file.*user: the file it gave has md5"
    with pytest.raises(data.DataError, match=expected):
        data.fetch(dest, small_npz, md5=good[::-1], routes=("user",), log=lambda _: None)
    assert md5sum(dest) == good


def test_fetch_keeps_a_file_that_already_verifies(small_npz):
    before = small_npz.stat().st_mtime_ns
    data.fetch(small_npz, md5=md5sum(small_npz), routes=("existing",), log=lambda _: None)
    assert small_npz.stat().st_mtime_ns == before


def test_fetch_checks_a_file_in_a_read_only_folder_where_it_is(small_npz, tmp_path):
    # break: create the temporary folder before the existing route (or mkdir it) -> PermissionError on a read-only raw
    raw = tmp_path / "raw"
    raw.mkdir()
    dest = raw / "bloodmnist.npz"
    shutil.copyfile(small_npz, dest)
    good = md5sum(dest)
    raw.chmod(0o555)
    try:
        if os.access(raw, os.W_OK):  # root (with CAP_DAC_OVERRIDE, as usual) writes to any folder
            pytest.skip("root ignores file permissions here: the folder stays writable")
        assert data.fetch(dest, small_npz, md5=good, routes=("existing", "user"), log=lambda _: None) == dest
        expected = rf"{re.escape(str(raw))} is read-only.*Fix: make {re.escape(str(raw))} writable.*or pass --dest"
        with pytest.raises(data.DataError, match=expected):  # a copy is needed: md5 of neither file matches
            data.fetch(dest, small_npz, md5=good[::-1], routes=("existing", "user"), log=lambda _: None)
        assert [p.name for p in raw.iterdir()] == [dest.name] and md5sum(dest) == good
    finally:
        raw.chmod(0o755)


def test_no_data_message_points_at_a_file_only_ci_has(tmp_path):
    # break: name ../shared/data/... or /work/shared (CI's own folder) in a hint -> users look for a file they lack
    messages = []
    for call in (
        lambda: data.verify_md5(tmp_path / "bloodmnist.npz"),
        lambda: data.fetch(tmp_path / "x" / "bloodmnist.npz", tmp_path / "absent.npz", routes=("user",), log=print),
        lambda: data.load_split("train", tmp_path / "bloodmnist.npz"),
    ):
        with pytest.raises(data.DataError) as error:
            call()
        messages.append(str(error.value))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(data.DataError) as error:
        data.load_split("train", tmp_path / "bad.npz", md5=None)
    messages.append(str(error.value))
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    data_section = readme.split("## The data", 1)[1].split("\n## ", 1)[0]
    modules = [Path(module.__file__).read_text() for module in (data.medmnist, data.fetching)]
    for text in [*messages, data_section, *modules]:
        assert "shared/" not in text, [line for line in text.splitlines() if "shared/" in line]


def test_fetch_rejects_unknown_route(tmp_path):
    with pytest.raises(ValueError, match="unknown route.*zenodo"):
        data.fetch(tmp_path / "x.npz", routes=("zenodo",))


@needs_real_data
def test_real_file_matches_the_official_split():
    splits = data.load_splits(path=REAL_FILE)
    assert {name: len(split) for name, split in splits.items()} == data.SPLIT_SIZES
    assert splits["train"].labels[:10].tolist() == [7, 3, 6, 6, 7, 6, 2, 2, 7, 2]
    assert splits["test"].class_counts().tolist() == [244, 624, 311, 579, 243, 284, 666, 470]
