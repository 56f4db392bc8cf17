"""Peak memory per architecture (``bloodssl.deploy.memory``), each measured in a fresh process."""

from __future__ import annotations

import pytest

from bloodssl.deploy import memory


@pytest.mark.skipif(not memory.CLEAR_REFS.exists(), reason="peak memory is read from Linux's /proc/self")
def test_a_larger_network_and_training_need_more_memory_than_a_small_one_and_inference():
    small = memory.peak_memory_mib("small_cnn", batch_size=32)
    large = memory.peak_memory_mib("resnet18", batch_size=32)
    assert 0 < small["inference_peak_mib"] < small["train_peak_mib"]
    assert large["train_peak_mib"] > 2 * small["train_peak_mib"]  # 11 M parameters against 74 k
    assert large["train_peak_mib"] > large["inference_peak_mib"]
