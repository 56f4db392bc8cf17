from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision
from sklearn.base import BaseEstimator
from torch import nn

from bloodssl.data import Split
from bloodssl.methods import embed


def split(name: str = "test", n: int = 12, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    return Split(name, rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8), np.arange(n) % 8)


class Counting:
    """A transform that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        return embed.pixels(images)[:, :5]


def extract(splits, transform, tmp_path, source="pixels-5", **kwargs):
    return embed.extract("toy", splits, transform, source=source, seed=1, profile="smoke", directory=tmp_path,
                         **kwargs)  # fmt: skip


def test_cache_is_written_with_a_manifest_and_reloaded(tmp_path):
    splits = {"train": split("train", 20), "test": split("test", 12)}
    transform = Counting()
    first = extract(splits, transform, tmp_path)
    again = extract(splits, transform, tmp_path)
    assert transform.calls == 2  # once per split, then only reads
    assert np.array_equal(first["test"], again["test"]) and again["train"].shape == (20, 5)
    _, manifest_path = embed.entry("toy", "test", seed=1, profile="smoke", directory=tmp_path)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["model"] == "toy" and manifest["seed"] == 1 and manifest["split"] == "test"
    assert manifest["shape"] == [12, 5]


def test_cache_with_the_wrong_number_of_rows_is_rejected(tmp_path):
    splits = {"test": split("test", 12)}
    extract(splits, Counting(), tmp_path)
    with pytest.raises(embed.EmbeddingCacheError, match="holds 12 embeddings but the test split has 10 images"):
        extract({"test": split("test", 10)}, Counting(), tmp_path)


def test_array_that_disagrees_with_its_manifest_is_rejected(tmp_path):
    splits = {"test": split()}
    extract(splits, Counting(), tmp_path)
    array_path, _ = embed.entry("toy", "test", seed=1, profile="smoke", directory=tmp_path)
    np.save(array_path, np.zeros((12, 7), np.float32))
    with pytest.raises(embed.EmbeddingCacheError, match=r"shape \(12, 7\) but its manifest says \(12, 5\)"):
        extract(splits, Counting(), tmp_path)


def test_a_cache_whose_rows_were_reordered_is_recomputed_not_trusted(tmp_path):
    # break: check only the shape (as before) -> the reversed rows are returned and every image gets another's embedding
    splits = {"test": split()}
    first = extract(splits, Counting(), tmp_path)["test"]
    array_path, _ = embed.entry("toy", "test", seed=1, profile="smoke", directory=tmp_path)
    np.save(array_path, first[::-1])
    transform = Counting()
    with pytest.warns(UserWarning, match="does not match the content its manifest recorded"):
        again = extract(splits, transform, tmp_path)["test"]
    assert transform.calls == 1 and np.array_equal(again, first)


def test_an_unreadable_cache_file_is_recomputed(tmp_path):
    splits = {"test": split()}
    first = extract(splits, Counting(), tmp_path)["test"]
    array_path, _ = embed.entry("toy", "test", seed=1, profile="smoke", directory=tmp_path)
    array_path.write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(UserWarning, match="cannot be read"):
        assert np.array_equal(extract(splits, Counting(), tmp_path)["test"], first)


def test_refresh_replaces_a_rejected_cache(tmp_path):
    splits = {"test": split()}
    extract(splits, Counting(), tmp_path)
    array_path, _ = embed.entry("toy", "test", seed=1, profile="smoke", directory=tmp_path)
    np.save(array_path, np.zeros((3, 5), np.float32))
    assert extract(splits, Counting(), tmp_path, refresh=True)["test"].shape == (12, 5)


def test_cache_of_another_encoder_or_other_images_is_recomputed_with_a_warning(tmp_path):
    splits = {"test": split()}
    extract(splits, Counting(), tmp_path)
    transform = Counting()
    with pytest.warns(UserWarning, match="other encoder weights"):
        extract(splits, transform, tmp_path, source="another")
    with pytest.warns(UserWarning, match="other images"):
        extract({"test": split(seed=5)}, transform, tmp_path, source="another")
    assert transform.calls == 2


def test_cache_directory_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(embed.ENV, str(tmp_path / "elsewhere"))
    assert embed.cache_dir() == tmp_path / "elsewhere"
    array_path, _ = embed.entry("simclr", "val", seed=0, profile="default")
    assert array_path == tmp_path / "elsewhere" / "default" / "simclr-seed0-val.npy"


class LinearEncoder(BaseEstimator):
    """The smallest encoder: a linear map of the pixels."""

    def __init__(self, width: int = 4):
        self.width = width
        self.model_ = nn.Linear(28 * 28 * 3, width)

    @torch.inference_mode()
    def transform(self, X):
        return self.model_(torch.from_numpy(embed.pixels(X))).numpy()


def test_encoder_signature_changes_with_its_weights(tmp_path):
    splits = {"test": split()}
    encoder = LinearEncoder()
    first = embed.encoder_embeddings("lin", encoder, splits, seed=0, profile="smoke", directory=tmp_path)
    assert embed.signature(encoder) == embed.signature(encoder)
    with torch.no_grad():
        encoder.model_.weight.add_(1.0)
    with pytest.warns(UserWarning, match="other encoder weights"):
        second = embed.encoder_embeddings("lin", encoder, splits, seed=0, profile="smoke", directory=tmp_path)
    assert not np.allclose(first["test"], second["test"])


def test_pixels_are_the_flattened_images_in_unit_range():
    images = split().images
    flat = embed.pixels(images)
    assert flat.shape == (12, 2352) and flat.dtype == np.float32
    assert np.isclose(flat[3, 0], images[3, 0, 0, 0] / 255)


@pytest.fixture
def resnet18_weights(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def test_imagenet_encoder_loads_weights_named_by_the_environment(resnet18_weights, monkeypatch):
    monkeypatch.setenv(embed.IMAGENET_ENV, str(resnet18_weights))
    encoder = embed.ImageNetEncoder(size=32).fit()
    saved = torch.load(resnet18_weights, weights_only=True)
    assert torch.equal(encoder.model_.conv1.weight, saved["conv1.weight"])
    features = encoder.transform(split(n=3).images)
    assert features.shape == (3, 512) and np.isfinite(features).all()


def test_imagenet_weights_are_optional_and_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.delenv(embed.IMAGENET_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert embed.imagenet_weights() is None
    with pytest.raises(FileNotFoundError, match="no ImageNet weights found"):
        embed.ImageNetEncoder().fit()
    cached = tmp_path / "checkpoints" / embed.RESNET18_FILE
    cached.parent.mkdir()
    cached.touch()
    assert embed.imagenet_weights() == cached


def test_missing_or_foreign_weights_say_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; expected a torchvision resnet18 state_dict"):
        embed.imagenet_weights(tmp_path / "nowhere.pth")
    foreign = tmp_path / "foreign.pth"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="is not a torchvision resnet18 state_dict"):
        embed.ImageNetEncoder(weights=foreign).fit()


def test_names_with_dots_get_their_own_files(tmp_path):
    splits = {"train": split("train", 20), "val": split("val", 12)}
    arrays = embed.extract("cnn_0.05", splits, embed.pixels, source="p", seed=0, profile="smoke", directory=tmp_path)
    assert arrays["train"].shape[0] == 20 and arrays["val"].shape[0] == 12
    assert sorted(p.name for p in (tmp_path / "smoke").glob("*.npy")) == [
        "cnn_0.05-seed0-train.npy", "cnn_0.05-seed0-val.npy"]  # fmt: skip


def test_few_label_cnn_embeddings_are_trained_once_per_subset_then_reused(tmp_path, monkeypatch):
    from conftest import colour_coded

    from bloodssl.methods.supervised import CNNClassifier

    monkeypatch.setenv(embed.ENV, str(tmp_path))
    images, labels = colour_coded(12)
    splits = {"train": Split("train", images, labels), "val": Split("val", *colour_coded(3, seed=1)),
              "test": Split("test", *colour_coded(3, seed=2))}  # fmt: skip
    embeddings = embed.labelled_cnn_embeddings(splits, profile="smoke", batch_size=16, tta="none", progress=False)
    first = embeddings(0.25, 7)
    assert {name: array.shape for name, array in first.items()} == {"train": (96, 128), "val": (24, 128),
                                                                   "test": (24, 128)}  # fmt: skip
    assert (tmp_path / "smoke" / "cnn_0.25-seed7-test.json").is_file()
    monkeypatch.setattr(CNNClassifier, "_train_epoch", lambda *a: pytest.fail("trained again"))
    assert np.array_equal(embeddings(0.25, 7)["test"], first["test"])
    classifier = embed.few_label_cnn(splits, fraction=0.25, seed=7, profile="smoke", batch_size=16, tta="none",
                                     progress=False)  # fmt: skip
    assert classifier.n_labels_ == 24  # a quarter of each class, nothing more
