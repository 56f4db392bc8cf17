"""A checkpoint is resumed only when it is the run's own and intact: another run's, an
unreadable or a damaged one is reported by name and retrained, never trusted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REAL_FILE, colour_coded, needs_real_data

from bloodssl import data
from bloodssl.core.checkpoints import load_checkpoint, save_checkpoint
from bloodssl.methods.supervised import CNNClassifier

FAST = dict(epochs=2, batch_size=32, progress=False, tta="none", num_threads=1, min_epoch_samples=64)


def test_an_intact_checkpoint_of_the_run_is_loaded(tmp_path):
    save_checkpoint(tmp_path / "a.pt", {"signature": "k", "w": torch.ones(3)})
    assert torch.equal(load_checkpoint(tmp_path / "a.pt", "k")["w"], torch.ones(3))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda path: path.write_bytes(b""), "is not a readable checkpoint"),
        (lambda path: path.write_bytes(b"garbage" * 100), "is not a readable checkpoint"),
    ],
)
def test_an_unreadable_checkpoint_is_named_and_retrained(tmp_path, damage, message):
    path = tmp_path / "a.pt"
    save_checkpoint(path, {"signature": "k", "w": torch.ones(3)})
    damage(path)
    with pytest.warns(UserWarning, match=f"{path} {message}.*training from scratch"):
        assert load_checkpoint(path, "k") is None


def test_a_checkpoint_whose_tensor_bytes_were_overwritten_is_not_trusted(tmp_path):
    # break: load without checking the digest -> fit returns at once with a NaN network (the reported bug)
    X, y = colour_coded(4)
    path = tmp_path / "cnn.pt"
    trained = CNNClassifier(**FAST, checkpoint=path).fit(X, y)
    raw = bytearray(path.read_bytes())
    start = raw.find(trained.model_.head.weight.detach().numpy().tobytes()[:64])
    assert start > 0
    raw[start : start + 64] = b"\xff" * 64  # NaNs of the same size, where the head's weights were
    path.write_bytes(bytes(raw))
    assert path.stat().st_size == len(raw)  # same size: only a digest can tell
    with pytest.warns(UserWarning, match="does not match the digest it was saved with"):
        again = CNNClassifier(**FAST, checkpoint=path).fit(X, y)
    assert np.isfinite(again.predict_proba(X)).all()
    assert np.allclose(again.predict_proba(X), trained.predict_proba(X), atol=1e-5)  # retrained: the same run


# -- the number of torch threads is part of the run ------------------------------------------


@pytest.fixture
def threads():
    """Leave torch's thread count as the test found it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def real_slice():
    """16 images per class from the real training split."""
    train = data.load_split("train", REAL_FILE)
    rows = np.concatenate([np.flatnonzero(train.labels == c)[:16] for c in range(data.N_CLASSES)])
    return train.images[rows], train.labels[rows]


@needs_real_data
@pytest.mark.parametrize("num_threads", [1, 2])
def test_the_same_seed_and_thread_count_give_bit_identical_predictions(real_slice, threads, num_threads):
    # break: leave torch.manual_seed (or the sampler's generator) unseeded -> two fits start or shuffle differently
    X, y = real_slice
    params = {**FAST, "num_threads": num_threads}
    first = CNNClassifier(**params).fit(X, y).predict_proba(X)
    second = CNNClassifier(**params).fit(X, y).predict_proba(X)
    assert np.array_equal(first, second)


def test_a_checkpoint_of_another_thread_count_is_named_and_retrained(tmp_path, threads):
    # break: save or compare no thread count -> a 2-thread checkpoint resumes under 1 thread (other weights)
    path = tmp_path / "a.pt"
    torch.set_num_threads(2)
    save_checkpoint(path, {"signature": "k", "w": torch.ones(3)})
    assert load_checkpoint(path, "k") is not None
    torch.set_num_threads(1)
    expected = f"{path} was trained with 2 torch threads but this run uses 1 .*training from scratch.*num_threads=2"
    with pytest.warns(UserWarning, match=expected):
        assert load_checkpoint(path, "k") is None
    torch.save({"signature": "k", "w": torch.ones(3)}, path)  # saved before the count was recorded
    with pytest.warns(UserWarning, match="was trained without a recorded thread count but this run uses 1"):
        assert load_checkpoint(path, "k") is None


def test_a_cnn_trained_under_two_threads_is_not_resumed_under_one(tmp_path, threads, monkeypatch):
    # break: leave the thread count out of the checkpoint -> the second fit returns the 2-thread network untrained
    X, y = colour_coded(4)
    params = {**FAST, "epochs": 1, "checkpoint": tmp_path / "cnn.pt"}
    CNNClassifier(**{**params, "num_threads": 2}).fit(X, y)
    epochs = []
    original = CNNClassifier._train_epoch
    monkeypatch.setattr(CNNClassifier, "_train_epoch", lambda self, *a: epochs.append(1) or original(self, *a))
    with pytest.warns(UserWarning, match="cnn.pt was trained with 2 torch threads but this run uses 1"):
        retrained = CNNClassifier(**params).fit(X, y)
    assert epochs == [1] and torch.get_num_threads() == 1
    assert torch.load(tmp_path / "cnn.pt", weights_only=True)["num_threads"] == 1  # overwritten by the new run
    assert np.array_equal(retrained.predict_proba(X), CNNClassifier(**{**FAST, "epochs": 1}).fit(X, y).predict_proba(X))
