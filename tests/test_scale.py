"""The Ray paths on a local Ray with 2 CPUs: labelling gives the local path's shards byte for
byte, and a sweep of six runs through Ray lands in the results store with the local numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from bloodssl import data, results
from bloodssl.deploy.bundle import Bundle
from bloodssl.deploy.predictor import label_images
from bloodssl.deploy.sources import AugmentedStream
from bloodssl.deploy.spec import PredictorSpec
from bloodssl.models import build_model
from bloodssl.scale.cluster import ray_session
from bloodssl.scale.labelling import label_images_on_ray
from bloodssl.scale.sweep import run_sweep
from bloodssl.studies import baseline
from tests.conftest import needs_real_data

pytestmark = needs_real_data


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the module (the functions under test reuse it)."""
    with ray_session(num_cpus=2):
        yield


def test_labelling_on_ray_writes_the_shards_of_the_local_path(local_ray, tmp_path):
    torch.manual_seed(0)
    Bundle(build_model("cnn", 8).eval(), "cnn", list(data.SHORT_NAMES), 1.5).save(tmp_path / "cnn.pt")
    spec = PredictorSpec(str(tmp_path / "cnn.pt"), threshold=0.126, threads=1)
    source = AugmentedStream(data.load_split("test").images, 2500, seed=2)
    here = label_images(spec.build(), source, tmp_path / "local", shard_size=512, progress=False)
    there = label_images_on_ray(spec, source, tmp_path / "ray", shard_size=512, replicas=2, cpus_per_replica=1)
    counts = ("shards", "images", "accepted", "review", "errors", "labelled_now")
    assert {k: there[k] for k in counts} == {k: here[k] for k in counts} and here["images"] == 2500
    for shard in range(5):
        name = f"part-{shard:05d}.parquet"
        assert pq.read_table(tmp_path / "ray" / name).equals(pq.read_table(tmp_path / "local" / name))
    assert (tmp_path / "ray" / "manifest.json").read_text() == (tmp_path / "local" / "manifest.json").read_text()


def test_a_sweep_through_ray_lands_in_the_results_store_with_the_local_numbers(local_ray, tmp_path):
    splits = {name: split.subset(np.arange(0, len(split), 24)) for name, split in data.load_splits().items()}
    configs = [dict(fraction=f, seed=s, epochs=1, min_epoch_samples=256, tta="none", num_threads=1, progress=False)
               for f in (0.5, 1.0) for s in (0, 1, 2)]  # fmt: skip
    tables = {}
    for where, on_ray in (("local", False), ("ray", True)):
        runs = run_sweep(baseline.train_and_evaluate, configs, shared={"splits": splits, "stem": f"sweep-{where}",
                         "profile": "smoke"}, on_ray=on_ray, progress=False)  # fmt: skip
        assert len(runs) == 6
        table = results.frame(row for run in runs for row in run.rows("smoke"))
        results.save(table, f"sweep_{where}", results_dir=tmp_path)
        tables[where] = results.load(f"sweep_{where}", results_dir=tmp_path)
    timed = tables["local"]["metric"].str.contains("per_second")
    assert timed.any() and (~timed).sum() > 30
    exact = ["method", "model", "label_fraction", "n_labels", "seed", "split", "metric", "value"]
    pd.testing.assert_frame_equal(tables["ray"].loc[~timed, exact], tables["local"].loc[~timed, exact])
