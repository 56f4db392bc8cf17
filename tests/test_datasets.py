"""Any 2D MedMNIST dataset by its flag: metadata from medmnist, grey images end to end,
classes inferred from the labels, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import colour_coded, grey_medmnist

from bloodssl import data
from bloodssl.core.validation import as_labels
from bloodssl.methods.supervised import CNNClassifier

FAST = dict(epochs=3, batch_size=32, progress=False, tta="none", num_threads=1, min_epoch_samples=256)


def test_dataset_info_comes_from_medmnist():
    pneumonia = data.dataset_info("pneumoniamnist")
    assert (pneumonia.n_classes, pneumonia.n_channels, pneumonia.image_shape) == (2, 1, (28, 28))
    assert pneumonia.short_names == ("normal", "pneumonia") and pneumonia.filename == "pneumoniamnist.npz"
    blood = data.dataset_info()
    assert blood.short_names == data.SHORT_NAMES and blood.md5 == data.OFFICIAL_MD5
    assert "pneumoniamnist" in data.flags_2d() and "chestmnist" not in data.flags_2d()


@pytest.mark.parametrize(
    ("flag", "why"),
    [("organmnist3d", "is a 3D dataset"), ("chestmnist", "is multi-label"), ("bloodmnst", "is not a medmnist flag")],
)
def test_flags_that_cannot_train_here_are_refused_with_the_ones_that_can(flag, why):
    with pytest.raises(
        data.DataError, match=f"'{flag}' {why}; bloodssl trains on 2D single-label datasets: bloodmnist"
    ):
        data.dataset_info(flag)


def test_a_grey_file_loads_with_a_channel_axis(tmp_path):
    path = grey_medmnist(tmp_path / "pneumoniamnist.npz")
    info, splits = data.load_dataset("pneumoniamnist", path)
    assert splits["train"].images.shape == (120, 28, 28, 1) and splits["val"].class_counts(info.n_classes).tolist() == [
        25, 25]  # fmt: skip
    with pytest.raises(data.DataError, match=r"has md5 .* the official 28x28 pneumoniamnist file has 28209e"):
        data.load_splits("pneumoniamnist", path)  # the official file is checked unless a data_file is given
    with pytest.raises(data.DataError, match=r"expected \(N, 28, 28, 3\) uint8 \(28x28 RGB\)"):
        data.load_split("train", path, flag="dermamnist", md5=None)


def test_a_flag_without_an_offline_route_says_how_to_get_its_file(tmp_path):
    with pytest.raises(data.DataError, match=r"(?s)no route.*make data DATASET=dermamnist SRC=/path/to/dermamnist.npz"):
        data.fetch(tmp_path / "dermamnist.npz", flag="dermamnist", routes=("existing", "user"), log=lambda _: None)


def test_the_cnn_learns_grey_images_and_infers_the_classes_from_y(tmp_path):
    _, splits = data.load_dataset("pneumoniamnist", grey_medmnist(tmp_path / "p.npz"))
    train, val = splits["train"], splits["val"]
    clf = CNNClassifier(**FAST).fit(train.images, train.labels, eval_set=(val.images, val.labels))
    assert clf.n_classes_ == 2 and clf.model_.backbone[0][0].in_channels == 1
    assert clf.predict_proba(val.images[:, :, :, 0]).shape == (50, 2)  # (N, H, W) grey images work too
    assert clf.score(val.images, val.labels) >= 0.9


def test_three_classes_give_three_outputs():
    X, y = colour_coded(4)
    keep = y < 3
    clf = CNNClassifier(**{**FAST, "epochs": 1}).fit(X[keep], y[keep])
    assert list(clf.classes_) == [0, 1, 2] and clf.predict_proba(X[:5]).shape == (5, 3)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0.5, 1.5, -1.0]), "y must hold integer class indices, got dtype float64"),
        (np.array([0.0, np.nan, 1.0]), r"it holds NaN: mark unlabelled images with -1"),
        (np.array([True, False, True]), "got dtype bool"),
        (np.array(["basophil", "platelet", "basophil"]), "got dtype <U8"),
        (np.array([0, 9, -1]), r"labels must be in 0\.\.7, or -1 for unlabelled; got -1\.\.9"),
        (np.array([0, 1]), r"has shape \(2,\) for 3 images"),
    ],
)
def test_labels_that_are_not_class_indices_are_refused_with_the_fix(labels, message):
    # break: cast with astype(int) first -> 0.5 and 1.5 silently become classes 0 and 1
    with pytest.raises(ValueError, match=message):
        as_labels(labels, 3, 8)
    if labels.dtype.kind != "i":  # an estimator refuses them too (it infers the number of classes from y)
        X, _ = colour_coded(1)
        with pytest.raises(ValueError, match=message):
            CNNClassifier(**FAST).fit(X[:3], labels)
