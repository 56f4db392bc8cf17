from __future__ import annotations

import numpy as np
import pytest
import torch

from bloodssl.methods.simclr import SimCLREncoder, nt_xent, random_resized_crop, speed_rows
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.models import build_model
from bloodssl.models.base import load_backbone


def images(n: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)


FAST = dict(epochs=2, batch_size=16, progress=False, num_threads=1)


def test_nt_xent_is_low_when_the_two_views_agree_and_images_differ():
    distinct = torch.eye(8) * 10
    agreeing = nt_xent(torch.cat([distinct, distinct]), temperature=0.05)
    shuffled = nt_xent(torch.cat([distinct, distinct.roll(1, 0)]), temperature=0.05)
    assert agreeing < 0.01 and shuffled > 1


def test_random_resized_crop_keeps_shape_and_range():
    batch = torch.rand(6, 3, 28, 28)
    out = random_resized_crop(batch, (0.3, 1.0), torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, batch)


def test_full_crop_is_the_identity():
    batch = torch.rand(4, 3, 28, 28)
    out = random_resized_crop(batch, (1.0, 1.0), torch.Generator().manual_seed(0), ratio=1.0)
    assert torch.allclose(out, batch, atol=1e-5)


def test_fit_ignores_labels_and_transform_gives_backbone_embeddings():
    X = images()
    with_labels = SimCLREncoder(**FAST).fit(X, np.arange(len(X)) % 8)
    without = SimCLREncoder(**FAST).fit(X)
    embeddings = without.transform(X[:5])
    assert embeddings.shape == (5, 128)
    assert np.allclose(with_labels.transform(X[:5]), embeddings, atol=1e-5)
    assert [r["epoch"] for r in without.history_] == [1, 2] and without.images_per_second_ > 0


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    X = images()
    whole = SimCLREncoder(**FAST).fit(X)
    original = torch.optim.SGD.step
    calls = {"n": 0}

    def crash_in_second_epoch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # three steps per epoch
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        SimCLREncoder(**FAST, checkpoint=tmp_path / "enc.pt").fit(X)
    monkeypatch.setattr(torch.optim.SGD, "step", original)
    resumed = SimCLREncoder(**FAST, checkpoint=tmp_path / "enc.pt").fit(X)
    assert [r["epoch"] for r in resumed.history_] == [1, 2]
    assert np.allclose(resumed.transform(X[:8]), whole.transform(X[:8]), atol=1e-4)


def test_finished_checkpoint_is_reused_and_other_images_retrain(tmp_path, monkeypatch):
    X = images()
    first = SimCLREncoder(**FAST, checkpoint=tmp_path / "enc.pt").fit(X)
    monkeypatch.setattr(SimCLREncoder, "_views", lambda *a: pytest.fail("trained again"))
    again = SimCLREncoder(**FAST, checkpoint=tmp_path / "enc.pt").fit(X)
    assert np.allclose(again.transform(X[:4]), first.transform(X[:4]))
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="written for other parameters or data"):
        SimCLREncoder(**{**FAST, "epochs": 1}, checkpoint=tmp_path / "enc.pt").fit(X[:-8])


def test_speed_rows_are_tidy():
    encoder = SimCLREncoder(**{**FAST, "epochs": 1}).fit(images(32))
    rows = speed_rows(encoder, profile="smoke", seed=0)
    assert {r["metric"]: r["value"] for r in rows} == {"train_images_per_second": encoder.images_per_second_,
                                                       "epochs": 1}  # fmt: skip
    assert all(r["wall_seconds"] == encoder.fit_seconds_ > 0 and r["split"] == "train" for r in rows)


@pytest.mark.parametrize("params", [{"crop_scale": (0.0, 1.0)}, {"crop_scale": (0.8, 0.5)}, {"temperature": 0}])
def test_bad_parameters_are_named(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        SimCLREncoder(**FAST, **params).fit(images(8))


def test_a_cnn_starts_from_the_encoders_backbone_and_keeps_its_own_head(tmp_path):
    # break: load the head too, or skip the input statistics -> the weights differ from the encoder's
    X = images()
    encoder = SimCLREncoder(**FAST, checkpoint=tmp_path / "enc.pt").fit(X)
    network = build_model("cnn", 8)
    head = network.head.weight.clone()
    load_backbone(network, tmp_path / "enc.pt")
    for name, value in encoder.model_.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(network.state_dict()[name], value), name
    assert torch.equal(network.head.weight, head)
    with pytest.raises(ValueError, match="another architecture"):
        load_backbone(build_model("small_cnn", 8), tmp_path / "enc.pt")
    with pytest.raises(FileNotFoundError, match="train the network it should hold first"):
        load_backbone(network, tmp_path / "missing.pt")


def test_a_cnn_from_the_encoder_never_reuses_the_random_starts_checkpoint(tmp_path, monkeypatch):
    # break: leave the starting weights out of the classifier's signature -> the second fit reloads the first
    X, y = images(), np.arange(48) % 8
    SimCLREncoder(**FAST, checkpoint=tmp_path / "enc.pt").fit(X)
    cnn = dict(epochs=1, batch_size=16, progress=False, num_threads=1, tta="none", checkpoint=tmp_path / "cnn.pt")
    random_start = CNNClassifier(**cnn).fit(X, y)
    with pytest.warns(UserWarning, match="written for other parameters or data"):
        simclr_start = CNNClassifier(**cnn, init_from=tmp_path / "enc.pt").fit(X, y)
    assert not np.allclose(simclr_start.predict_proba(X[:8]), random_start.predict_proba(X[:8]))
    monkeypatch.setattr(CNNClassifier, "_train_epoch", lambda *a: pytest.fail("trained again"))
    again = CNNClassifier(**cnn, init_from=tmp_path / "enc.pt").fit(X, y)  # its own checkpoint now: reloaded
    assert np.array_equal(again.predict_proba(X[:8]), simclr_start.predict_proba(X[:8]))
