"""``make bench`` (``bloodssl.deploy.bench``): its timer, its FLOP/s arithmetic and the files it writes."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from bloodssl.core.complexity import flops_per_image
from bloodssl.deploy import bench
from bloodssl.models import build_architecture


def test_timed_counts_the_images_of_each_window():
    def step() -> int:
        time.sleep(0.01)
        return 10

    rate = bench.timed(step, seconds=0.3)
    assert 500 < rate < 1000  # 10 images per 10 ms at most, less the timer's and the scheduler's overhead


def test_bench_writes_a_row_per_measurement_with_consistent_flops(tmp_path):
    bench.main(["--models", "cnn", "--batch-sizes", "16", "32", "--backends", "torch-fp32", "openvino-int8",
                "--seconds", "0.3", "--out", str(tmp_path)])  # fmt: skip
    table = pd.read_csv(tmp_path / "bench.csv")
    machine = json.loads((tmp_path / "bench.json").read_text())
    # training at two batch sizes, then inference per backend and batch size
    assert list(zip(table["mode"], table["backend"], table["batch_size"], strict=True)) == [
        ("train", "torch-fp32", 16), ("train", "torch-fp32", 32),
        ("inference", "torch-fp32", 16), ("inference", "torch-fp32", 32),
        ("inference", "openvino-int8", 16), ("inference", "openvino-int8", 32),
    ]  # fmt: skip
    model = build_architecture("cnn", 8, [0.5] * 3, [0.25] * 3)
    assert table["mflops_per_image"].unique().tolist() == pytest.approx([flops_per_image(model, (3, 28, 28)) / 1e6])
    assert (table["images_per_second"] > 0).all()
    passes = table["mode"].map({"train": 3, "inference": 1})
    expected = passes * table["images_per_second"] * table["mflops_per_image"] / 1e3
    assert table["gflops_per_second"].to_numpy() == pytest.approx(expected.to_numpy())
    peak = machine["fp32_peak_gflops_per_second"]
    assert peak > 1
    assert table["peak_fraction"].to_numpy() == pytest.approx((table["gflops_per_second"] / peak).to_numpy())
    assert machine["seconds_per_measurement"] == 0.3 and machine["torch_version"]


def test_bench_names_an_unknown_model_and_the_choices():
    with pytest.raises(ValueError, match="unknown model or backend vgg; models: cnn, small_cnn"):
        bench.bench(models=["vgg"])
