"""The batch predictor: bundles, backends (torch and OpenVINO fp32/int8), sources, Parquet
shards with resume, routing and an errors file, and the command line; on real cells."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from bloodssl import data
from bloodssl.deploy.backends import OpenVINOBackend, TorchBackend, export_openvino
from bloodssl.deploy.bundle import Bundle
from bloodssl.deploy.cli import main as cli
from bloodssl.deploy.predictor import BatchPredictor, label_images, shard_path
from bloodssl.deploy.sources import AugmentedStream, ImageFolder, NpzImages
from bloodssl.deploy.spec import PredictorSpec
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.models import build_model
from tests.conftest import grey_medmnist, needs_real_data

pytestmark = needs_real_data


@pytest.fixture(scope="module")
def splits():
    return data.load_splits()


@pytest.fixture(scope="module")
def trained(splits):
    """A CNN trained for three short epochs on 100 real cells per class (about 60 % accurate)."""
    train = splits["train"]
    labels = np.full(len(train), -1)
    for c in range(data.N_CLASSES):
        chosen = np.flatnonzero(train.labels == c)[:100]
        labels[chosen] = c
    classifier = CNNClassifier(epochs=3, min_epoch_samples=2048, tta="none", progress=False, num_threads=2)
    return classifier.fit(train.images, labels)


@pytest.fixture(scope="module")
def bundle(trained, splits):
    return Bundle.from_classifier(trained, data.SHORT_NAMES, splits["val"].images, splits["val"].labels)


@pytest.fixture(scope="module")
def bundle_file(bundle, tmp_path_factory):
    return bundle.save(tmp_path_factory.mktemp("bundle") / "cnn.pt")


def test_a_bundle_loads_back_to_the_same_network_and_a_damaged_one_is_refused(bundle, bundle_file, splits, tmp_path):
    images = splits["test"].images[:64]
    loaded = Bundle.load(bundle_file)
    assert loaded.fingerprint == bundle.fingerprint and loaded.temperature == bundle.temperature
    np.testing.assert_array_equal(TorchBackend(loaded.model)(images)[0], TorchBackend(bundle.model)(images)[0])
    state = torch.load(bundle_file, weights_only=True)
    for field, change in (("temperature", lambda t: t * 2), ("class_names", lambda n: n[::-1])):
        edited = {**state, field: change(state[field])}  # saved again without a new digest
        torch.save(edited, tmp_path / "edited.pt")
        with pytest.raises(ValueError, match="edited.pt does not match the digest"):
            Bundle.load(tmp_path / "edited.pt")
    weights = {key: value.clone() for key, value in state["weights"].items()}
    weights["head.bias"][0] += 1.0
    torch.save({**state, "weights": weights}, tmp_path / "edited.pt")
    with pytest.raises(ValueError, match="does not match the digest"):
        Bundle.load(tmp_path / "edited.pt")
    with pytest.raises(FileNotFoundError, match="Bundle.save"):
        Bundle.load(tmp_path / "absent.pt")


def test_the_temperature_is_fitted_on_validation_and_changes_confidence_not_labels(bundle, trained, splits):
    images = splits["test"].images[:500]
    calibrated = BatchPredictor(TorchBackend(bundle.model), bundle.class_names, bundle.temperature).predict(images)
    raw = trained.predict_proba_tta(images, "none")
    assert bundle.temperature != 1.0
    np.testing.assert_array_equal(calibrated["label"], raw.argmax(1))
    assert not np.allclose(calibrated["confidence"], raw.max(1), atol=1e-3)
    plain = BatchPredictor(TorchBackend(bundle.model), bundle.class_names, 1.0).predict(images)
    np.testing.assert_allclose(plain["probabilities"], raw, atol=1e-5)


def test_openvino_fp32_gives_torch_logits_and_int8_keeps_the_labels(bundle, splits, tmp_path):
    images = splits["test"].images[:1000]
    reference, embedding = TorchBackend(bundle.model)(images)
    fp32 = OpenVINOBackend(export_openvino(bundle.model, tmp_path / "fp32.xml"))
    logits, features = fp32(images)
    np.testing.assert_allclose(logits, reference, atol=1e-3)
    assert features.shape == embedding.shape == (1000, bundle.model.embedding_dim)
    int8_path = export_openvino(bundle.model, tmp_path / "int8.xml", splits["train"].images[:300])
    int8 = OpenVINOBackend(int8_path)
    assert fp32.describe()["precision"] == "fp32" and int8.describe()["precision"] == "int8"
    quantised = int8(images)[0].argmax(1)
    truth = splits["test"].labels[:1000]
    assert (quantised == truth).mean() >= (reference.argmax(1) == truth).mean() - 0.03
    top2 = np.sort(reference, 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1.0  # labels the network is sure of do not flip
    assert (quantised[clear] == reference.argmax(1)[clear]).mean() >= 0.98 and clear.sum() > 200
    with pytest.raises(ValueError, match=".xml"):
        export_openvino(bundle.model, tmp_path / "model.onnx")


def test_an_augmented_stream_reads_the_same_images_for_the_same_range(splits):
    stream = AugmentedStream(splits["test"].images, 1_000_000, seed=3)
    first, again = stream.read(5000, 5600), stream.read(5000, 5600)
    np.testing.assert_array_equal(first.images, again.images)
    assert first.ids[0] == "aug/5000" and len(first.ids) == 600
    assert not np.array_equal(first.images, stream.read(5600, 6200).images)
    assert len(stream.read(999_900, 1_100_000).ids) == 100
    with pytest.raises(ValueError, match="uint8"):
        AugmentedStream(splits["test"].images.astype(np.float32), 10)


def labelled(folder) -> pd.DataFrame:
    return pq.read_table(sorted(folder.glob("part-*.parquet"))).to_pandas()


def test_an_interrupted_run_resumes_to_the_files_of_an_uninterrupted_one(bundle, splits, tmp_path):
    predictor = BatchPredictor(TorchBackend(bundle.model), bundle.class_names, bundle.temperature, 0.8, True)
    source = AugmentedStream(splits["test"].images, 2500, seed=1)
    whole = label_images(predictor, source, tmp_path / "whole", shard_size=1000, progress=False)

    def stop_after_the_second(shard):
        if shard == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        label_images(predictor, source, tmp_path / "cut", 1000, progress=False, on_shard=stop_after_the_second)
    first = shard_path(tmp_path / "cut", 0).stat().st_mtime_ns
    resumed = label_images(predictor, source, tmp_path / "cut", shard_size=1000, progress=False)
    assert resumed["labelled_now"] == 500 and shard_path(tmp_path / "cut", 0).stat().st_mtime_ns == first
    pd.testing.assert_frame_equal(labelled(tmp_path / "cut"), labelled(tmp_path / "whole"))
    assert {k: v for k, v in resumed.items() if k not in ("labelled_now", "seconds", "images_per_second")} == {
        k: v for k, v in whole.items() if k not in ("labelled_now", "seconds", "images_per_second")
    }
    rows = labelled(tmp_path / "whole")
    assert len(rows) == whole["images"] == 2500 and whole["accepted"] + whole["review"] == 2500
    assert (rows["route"] == "accept").sum() == whole["accepted"]
    assert ((rows["confidence"] >= 0.8) == (rows["route"] == "accept")).all()
    assert len(rows["embedding"][0]) == bundle.model.embedding_dim and len(rows["probabilities"][0]) == 8


def test_a_folder_of_another_run_is_refused_not_overwritten(bundle, splits, tmp_path):
    source = NpzImages(data.default_path(), "val")
    label_images(BatchPredictor(TorchBackend(bundle.model), bundle.class_names), source, tmp_path, 4096, False)
    before = shard_path(tmp_path, 0).read_bytes()
    other = BatchPredictor(TorchBackend(bundle.model), bundle.class_names, threshold=0.5)
    with pytest.raises(ValueError, match="predictor.threshold"):
        label_images(other, source, tmp_path, 4096, False)
    assert shard_path(tmp_path, 0).read_bytes() == before


def test_a_folder_of_images_of_any_size_is_labelled_and_a_corrupt_file_lands_in_the_errors(bundle, splits, tmp_path):
    cells = splits["test"].images[:6]
    (tmp_path / "slides" / "b").mkdir(parents=True)
    for i, cell in enumerate(cells):
        big = Image.fromarray(cell).resize((96, 96), Image.Resampling.BICUBIC)
        big.save(tmp_path / "slides" / ("b" if i % 2 else "") / f"cell{i}.{'jpg' if i == 3 else 'png'}")
    (tmp_path / "slides" / "broken.png").write_bytes(b"\x89PNG not really")
    source = ImageFolder(tmp_path / "slides")
    predictor = BatchPredictor(TorchBackend(bundle.model), bundle.class_names)
    summary = label_images(predictor, source, tmp_path / "out", shard_size=4, progress=False)
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert summary["images"] == 6 and summary["errors"] == 1 and summary["labelled_now"] == 6  # errors not counted
    assert errors["id"].tolist() == ["broken.png"] and "UnidentifiedImageError" in errors["reason"][0]
    rows = labelled(tmp_path / "out").set_index("id")
    assert "b/cell1.png" in rows.index and "cell0.png" in rows.index
    # resized back to 28 px, a PNG cell gets the label of the original image
    original = predictor.predict(cells[[0]])["label"][0]
    assert rows.loc["cell0.png", "label"] == original
    with pytest.raises(ValueError, match="no image file"):
        ImageFolder(tmp_path / "out")


def test_the_command_line_exports_and_labels(bundle_file, tmp_path, capsys):
    npz = data.default_path()
    cli(["export", str(bundle_file), str(tmp_path / "int8.xml"), "--int8", str(npz)])
    cli(["label", str(bundle_file), str(npz), str(tmp_path / "labels"), "--split", "val",
         "--exported", str(tmp_path / "int8.xml")])  # fmt: skip
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.rindex('{\n  "shards"') :])
    assert summary["images"] == data.SPLIT_SIZES["val"]
    manifest = json.loads((tmp_path / "labels" / "manifest.json").read_text())
    assert manifest["predictor"]["precision"] == "int8" and manifest["source"]["split"] == "val"
    spec = PredictorSpec(str(bundle_file), str(tmp_path / "int8.xml"))
    assert spec.build().describe() == manifest["predictor"]
    with pytest.raises(ValueError, match="npz"):
        cli(["label", str(bundle_file), str(tmp_path), str(tmp_path / "x"), "--augmented", "10"])


def test_shards_without_a_manifest_are_refused(bundle, tmp_path):
    predictor = BatchPredictor(TorchBackend(bundle.model), bundle.class_names)
    source = NpzImages(data.default_path(), "val")
    label_images(predictor, source, tmp_path, 1024, progress=False)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(ValueError, match="no manifest.json"):
        label_images(predictor, source, tmp_path, 1024, progress=False)


def test_an_exported_model_of_other_weights_is_refused(bundle, bundle_file, tmp_path):
    torch.manual_seed(1)
    other = Bundle(build_model("cnn", 8).eval(), "cnn", bundle.class_names).save(tmp_path / "other.pt")
    xml = export_openvino(bundle.model, tmp_path / "mine.xml")
    assert PredictorSpec(str(bundle_file), str(xml)).build().backend.weights == bundle.fingerprint
    with pytest.raises(ValueError, match="other weights"):
        PredictorSpec(str(other), str(xml)).build()


def test_a_grey_npz_split_is_read_with_its_channel_axis(tmp_path):
    source = NpzImages(grey_medmnist(tmp_path / "grey.npz"), "test")
    batch = source.read(0, 10)
    assert batch.images.shape == (10, 28, 28, 1)
    assert AugmentedStream(source.images, 20).read(0, 20).images.shape == (20, 28, 28, 1)


def test_a_folder_crop_keeps_the_centre_and_a_changed_folder_is_another_source(tmp_path):
    picture = np.zeros((100, 100, 3), np.uint8)
    picture[...] = (255, 0, 0)  # a red frame ...
    picture[25:75, 25:75] = (0, 0, 255)  # ... around a blue centre
    Image.fromarray(picture).save(tmp_path / "a.png")
    centre = ImageFolder(tmp_path, crop=0.5).read(0, 1).images[0]
    whole = ImageFolder(tmp_path).read(0, 1).images[0]
    assert centre[..., 0].max() < 10 and centre[..., 2].min() > 245
    assert whole[0, 0, 0] > 245 and whole[14, 14, 2] > 245
    before = ImageFolder(tmp_path).describe()
    (tmp_path / "a.png").rename(tmp_path / "b.png")  # same count, same first and last file, other names
    assert ImageFolder(tmp_path).describe()["files_md5"] != before["files_md5"]
    with pytest.raises(ValueError, match="crop"):
        ImageFolder(tmp_path, crop=1.5)
