"""A checkpoint is resumed only when it is the run's own and intact: another run's, an
unreadable or a damaged one is reported by name and retrained, never trusted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import colour_coded

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
