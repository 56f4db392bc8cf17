"""What notebook 08 runs: the default CNN deployed (torch fp32, OpenVINO fp32 and int8), its
accuracy per backend, a stream of augmented images labelled by a separate process (its
images/s and peak memory), the same labelling on a local Ray, and a sweep of the run
harness through Ray next to the same sweep here (its plan per profile). The cost model
the notebook applies to these measurements is ``studies.cost``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from PIL import Image

from bloodssl import paths, predictions, results
from bloodssl.core.calibration import expected_calibration_error, sharpen
from bloodssl.core.evaluate import evaluate
from bloodssl.data import Split
from bloodssl.deploy.backends import OpenVINOBackend, TorchBackend, calibration_images, export_openvino
from bloodssl.deploy.bundle import Bundle
from bloodssl.deploy.predictor import BatchPredictor, label_images
from bloodssl.deploy.sources import AugmentedStream
from bloodssl.deploy.spec import PredictorSpec
from bloodssl.scale.labelling import label_images_on_ray
from bloodssl.scale.sweep import run_sweep
from bloodssl.studies import baseline

#: the backends compared: (name, exported precision or None for torch)
BACKENDS = {"torch-fp32": None, "openvino-fp32": "fp32", "openvino-int8": "int8"}


@dataclass(frozen=True)
class Plan:
    """Notebook 08 at one profile: images of the augmented stream labelled by the int8 path
    (``stream_images``) and by torch and OpenVINO fp32 (``torch_images``), JPEG files of
    ``jpeg_size`` px decoded and labelled (``jpeg_images``), a stream labelled both here and
    on Ray (``ray_images``), and the sweep run here and through Ray: ``sweep_fractions`` x 3
    seeds of the CNN ``sweep_cnn`` on every ``sweep_every``-th image of each split. The model
    deployed is notebook 01's at ``model_profile``: the published (default) one, also for
    ``full``, whose part is the longer measurements, not a longer training. ``small_cnn``
    is the smaller network deployed beside it (notebook 01's recipe with these settings
    changed), whose int8 path labels ``stream_images`` as well."""

    stream_images: int
    torch_images: int
    jpeg_images: int
    ray_images: int
    sweep_fractions: tuple[float, ...]
    sweep_cnn: dict
    sweep_every: int
    model_profile: str = "default"
    #: a quarter of the default CNN's FLOPs, trained for 10 epochs instead of 4: about the same training time
    small_cnn: dict = field(default_factory=lambda: {"model": "small_cnn", "epochs": 10})
    shard_size: int = 16_384
    jpeg_size: int = 360  # the PBC dataset's originals are 360 x 363 JPEGs
    thresholds: tuple[float, ...] = field(default=tuple(np.round(np.linspace(0.5, 0.99, 50), 3)))


PLANS: dict[str, Plan] = {
    # smoke: the int8 path and JPEG files only, no Ray (its start-up alone is most of a smoke run: tests/test_scale.py)
    "smoke": Plan(20_000, 0, 200, 0, (0.5, 1.0), {"epochs": 1, "min_epoch_samples": 256}, 1, "smoke",
                  {"model": "small_cnn"}, 4_096),
    # default: the int8 paths' streams only (fp32's: `full` and `make bench`), the sweep on a sixteenth of the data
    "default": Plan(100_000, 0, 2_000, 10_000, (0.01, 0.05, 1.0), {"epochs": 1, "min_epoch_samples": 512}, 16),
    "full": Plan(1_000_000, 200_000, 20_000, 100_000, (0.01, 0.05, 1.0), {"epochs": 2, "min_epoch_samples": 2048}, 1),
}  # fmt: skip


def backend_params(name: str) -> dict[str, str]:
    """A key of ``BACKENDS`` as the settings of its result rows: ``{"backend", "precision"}``."""
    backend, precision = name.split("-")
    return {"backend": backend, "precision": precision}


def deployable(splits: Mapping[str, Split], profile: str, seed: int, class_names: Sequence[str],
               stem: str = baseline.STEM, **changes) -> tuple[Bundle, float]:  # fmt: skip
    """Notebook 01's CNN at ``profile`` (a plan's ``model_profile``) and ``seed`` (its
    checkpoint, so free once 01 ran), as a bundle with its temperature fitted on val; and its
    training wall time (s). ``changes`` alter 01's recipe (``model="small_cnn", epochs=10``),
    checkpointed under ``stem`` instead of notebook 01's."""
    classifier = baseline.fit_recipe(splits, profile, seed, stem, **changes)
    bundle = Bundle.from_classifier(classifier, class_names, splits["val"].images, splits["val"].labels)
    return bundle, classifier.fit_seconds_


def export_all(bundle: Bundle, folder: Path, train_images: np.ndarray) -> dict[str, Path | None]:
    """The bundle's network written for each backend of ``BACKENDS`` (None: torch needs no
    file), int8 calibrated on 2,000 of ``train_images`` drawn at random."""
    calibration = calibration_images(train_images)
    return {name: None if precision is None else export_openvino(
                bundle.model, Path(folder) / f"{name}.xml", calibration if precision == "int8" else None,
                train_images.shape[1:])
            for name, precision in BACKENDS.items()}  # fmt: skip


def predictor(bundle: Bundle, exported: Path | None) -> BatchPredictor:
    """The bundle on torch (``exported=None``) or on an exported OpenVINO model."""
    backend = TorchBackend(bundle.model) if exported is None else OpenVINOBackend(exported)
    return BatchPredictor.from_bundle(bundle, backend)


def backend_rows(bundle: Bundle, exported: Mapping[str, Path | None], splits: Mapping[str, Split],
                 class_names: Sequence[str], keys: Mapping,
                 reference: np.ndarray | None = None) -> tuple[list[dict], list, dict]:  # fmt: skip
    """Val and test metrics of each backend (calibrated probabilities), the expected calibration
    error before and after temperature scaling, and the test accuracy change against torch fp32
    (``reference``: the test probabilities of another model to measure the change against, e.g.
    the default CNN's for a smaller one); returns the result rows, their per-image predictions
    and each backend's probabilities per split (``{split: {backend: proba}}``)."""
    rows, saved, proba_of = [], [], {"val": {}, "test": {}}
    for name, path in exported.items():
        run = {**keys, "params": backend_params(name)}
        for split in ("val", "test"):
            start = time.perf_counter()
            proba = predictor(bundle, path).predict(splits[split].images)["probabilities"]
            seconds = time.perf_counter() - start
            evaluation = evaluate(splits[split].labels, proba, class_names)
            raw = sharpen(proba, 1 / bundle.temperature)  # the network's own probabilities
            ece = {"ece": expected_calibration_error(proba, splits[split].labels),
                   "ece_uncalibrated": expected_calibration_error(raw, splits[split].labels)}  # fmt: skip
            rows += results.rows({**evaluation.metrics, **ece}, split=split, wall_seconds=seconds, **run)
            saved.append(predictions.of(evaluation, split, **run))
            proba_of[split][name] = proba
    test_proba = proba_of["test"]
    reference = (test_proba["torch-fp32"] if reference is None else reference).argmax(1) == splits["test"].labels
    for name, proba in test_proba.items():
        run = {**keys, "params": backend_params(name)}
        change = (proba.argmax(1) == splits["test"].labels).mean() - reference.mean()
        rows += results.rows({"accuracy_change": change}, split="test", wall_seconds=float("nan"), **run)
    return rows, saved, proba_of


def label_stream(bundle_file: Path, exported: Path | None, data_file: Path, n_images: int, seed: int,
                 shard_size: int, threads: int = 2) -> dict:  # fmt: skip
    """Label ``n_images`` augmented copies of the training images with ``python -m
    bloodssl.deploy label`` in a process of its own (so its peak memory is the labelling
    job's, not this notebook's), into a temporary folder deleted afterwards; returns its
    summary (images/s, counts, ``peak_rss_mib``) and the process's wall time."""
    options = ["--split", "train", "--augmented", str(n_images), "--seed", str(seed)]
    return _label_in_process(bundle_file, exported, data_file, options, shard_size, threads)


def label_jpegs(bundle_file: Path, exported: Path | None, images: np.ndarray, size: int, shard_size: int,
                threads: int = 2) -> dict:  # fmt: skip
    """Write ``images`` as JPEG files of ``size`` x ``size`` px (upsampled, as a microscope
    exports them) and label that folder in a process of its own: what decoding and resizing
    real files costs on top of the network."""
    with tempfile.TemporaryDirectory() as folder:
        for i, image in enumerate(images):
            big = Image.fromarray(image.squeeze()).resize((size, size), Image.Resampling.BICUBIC)
            big.save(Path(folder) / f"cell{i:07d}.jpg", quality=90)
        return _label_in_process(bundle_file, exported, Path(folder), [], shard_size, threads)


def _label_in_process(bundle_file: Path, exported: Path | None, source: Path, options: list[str], shard_size: int,
                      threads: int) -> dict:  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "bloodssl.deploy", "label", str(bundle_file), str(source),
                   str(Path(folder) / "labels"), *options, "--shard-size", str(shard_size), "--threads", str(threads),
                   "--quiet", *(["--exported", str(exported)] if exported is not None else [])]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"labelling failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout), "process_seconds": wall, "threads": threads}


def stream_rows(summary: Mapping, keys: Mapping, backend: str, source: str) -> list[dict]:
    """A labelling run (``label_stream``, ``label_jpegs``) as result rows (split ``stream``):
    images/s, images, peak memory and the process's wall time."""
    metrics = {"labelled_images_per_second": summary["images_per_second"], "labelled_images": summary["images"],
               "peak_rss_mib": summary["peak_rss_mib"], "process_seconds": summary["process_seconds"]}  # fmt: skip
    params = {**backend_params(backend), "executor": "local",
              "threads": summary["threads"], "source": source}  # fmt: skip
    return results.rows(metrics, split="stream", wall_seconds=summary["seconds"], params=params, **keys)


def ray_labelling(spec: PredictorSpec, source: AugmentedStream, shard_size: int, replicas: int = 2) -> dict:
    """The same stream labelled here (one predictor) and on a local Ray (``replicas`` actors
    of one CPU each; the spec at one thread in both): the wall times, and whether both wrote
    the same shards with the same rows."""
    with tempfile.TemporaryDirectory() as folder:
        local, on_ray = Path(folder) / "local", Path(folder) / "ray"
        start = time.perf_counter()
        here = label_images(spec.build(), source, local, shard_size, progress=False)
        local_seconds = time.perf_counter() - start
        start = time.perf_counter()
        label_images_on_ray(spec, source, on_ray, shard_size, replicas=replicas, cpus_per_replica=1)
        ray_seconds = time.perf_counter() - start
        names = sorted(p.name for p in local.glob("*.parquet"))
        identical = bool(names) and names == sorted(p.name for p in on_ray.glob("*.parquet")) and all(
            pq.read_table(local / name).equals(pq.read_table(on_ray / name)) for name in names)  # fmt: skip
    return {"images": here["images"], "local_seconds": local_seconds, "ray_seconds": ray_seconds,
            "identical": identical}  # fmt: skip


def sweep_configs(plan: Plan, seeds: Sequence[int]) -> list[dict]:
    """The sweep's runs: every label fraction x seed, one thread each (the same sums anywhere)."""
    return [dict(fraction=f, seed=s, tta="none", num_threads=1, progress=False, **plan.sweep_cnn)
            for f in plan.sweep_fractions for s in seeds]  # fmt: skip


def sweeps(splits: Mapping[str, Split], plan: Plan, seeds: Sequence[int], profile: str,
           class_names: Sequence[str]) -> tuple[pd.DataFrame, list, dict[str, float]]:  # fmt: skip
    """The sweep run here and then as Ray tasks (a local Ray with 2 CPUs): both runs' result
    rows (``params`` ``executor``), their per-image predictions and each executor's wall time.
    Each executor's runs checkpoint under a stem of their own, cleared first: both train
    from scratch on every call (the Ray runs never load the local runs' weights, and a rerun
    of the notebook times training, not loading)."""
    thinned = {name: split.subset(np.arange(0, len(split), plan.sweep_every)) for name, split in splits.items()}
    tables, saved, seconds = [], [], {}
    for executor in ("local", "ray"):
        shutil.rmtree(paths.MODELS / f"08_sweep_{executor}", ignore_errors=True)  # this sweep's own checkpoints
        start = time.perf_counter()
        runs = run_sweep(baseline.train_and_evaluate, sweep_configs(plan, seeds), on_ray=executor == "ray", num_cpus=2,
                         shared={"splits": thinned, "stem": f"08_sweep_{executor}", "profile": profile,
                                 "class_names": list(class_names)})  # fmt: skip
        seconds[executor] = time.perf_counter() - start
        params = {"executor": executor, "every": plan.sweep_every}
        tables.append(results.frame(row for run in runs for row in run.rows(profile)).assign(
            params=results.params_json(params)))  # fmt: skip
        saved += [predictions.of(run.evaluations[split], split, method=run.method, model=run.classifier.model,
                                 label_fraction=run.fraction, seed=run.seed, profile=profile, params=params)
                  for run in runs for split in run.evaluations]  # fmt: skip
    return pd.concat(tables, ignore_index=True), saved, seconds


def sweep_agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Each metric of each run of the sweep here and through Ray, side by side, with whether
    they are equal (timings excluded: they differ by nature)."""
    keys = ["method", "model", "label_fraction", "seed", "split", "metric"]
    scores = table[~table["metric"].str.contains("per_second")]
    wide = scores.assign(executor=[json.loads(p)["executor"] for p in scores["params"]]).pivot_table(
        index=keys, columns="executor", values="value", aggfunc="first").reset_index()  # fmt: skip
    return wide.assign(equal=wide["local"] == wide["ray"])
