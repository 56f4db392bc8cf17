"""What notebook 07 runs: which network to use (accuracy and cost of the registry's
architectures), whether its probabilities mean anything (calibration before and after
temperature scaling), whether it survives a stained, blurred or badly lit slide (MedMNIST-C's
corruptions at five severities) and whether the test split leaks into training (exact and
perceptual-hash duplicates). Its plan per profile is ``PLANS``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from bloodssl import predictions, results
from bloodssl.core.calibration import expected_calibration_error, fit_temperature, reliability, sharpen
from bloodssl.core.evaluate import evaluate
from bloodssl.data import Split, corruptions, duplicates
from bloodssl.deploy.bench import bench_model
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.studies import baseline

#: the result splits of the corrupted test images and of the test split without its near duplicates
CORRUPTED, DEDUPLICATED = "test_corrupted", "test_deduplicated"


@dataclass(frozen=True)
class Plan:
    """Notebook 07 at one profile: the architectures whose cost is measured
    (``bench_models``, ``bench_seconds`` per measurement) and those trained with notebook 01's
    recipe (``train_models``, its ``model_profile`` plan, on ``n_seeds`` seeds); the test
    images corrupted per corruption and severity (``corrupted_images``, None = all); the
    largest perceptual-hash distance of a near duplicate (``max_distance`` bits of 64)."""

    bench_models: tuple[str, ...]
    train_models: tuple[str, ...]
    n_seeds: int
    corrupted_images: int | None
    bench_seconds: float
    model_profile: str = "default"
    max_distance: int = 4
    #: pairs up to this distance are listed too, to show what lies just above ``max_distance``
    inspect_distance: int = 12
    batch_size: int = 64
    #: test-time augmentations every trained model is evaluated with (``core.prediction.TTA_MODES``)
    ttas: tuple[str, ...] = ("none",)
    #: the corruption severities measured (medmnistc's 0..4); 3 is the robustness target's
    severities: tuple[int, ...] = (3,)


CHEAP = ("cnn", "small_cnn", "basic_cnn", "cnn_bn_dropout", "cnn_se", "wide_cnn", "inception_cnn")
EVERY = (*CHEAP, "vgg_cnn", "resnet18", "efficientnet_lite0", "efficientnet_lite0_64")

PLANS: dict[str, Plan] = {
    "smoke": Plan(("cnn", "small_cnn"), ("cnn",), 1, 40, 0.2, "smoke", batch_size=16, severities=(0, 4)),
    # default: the CNNs notebook 01 trained (free), every architecture's cost, 300 test images corrupted at the
    # target's severity (motion blur through ImageMagick at 224 px costs ~80 ms an image, most of the time here)
    "default": Plan(EVERY, ("cnn",), 2, 300, 0.3),  # notebook 01's default seeds
    # full: every cheap architecture trained on 3 seeds, with and without TTA; all 3,421 test images at every level
    "full": Plan(EVERY, CHEAP, 3, None, 3.0, batch_size=256, ttas=("none", "dihedral"), severities=(0, 1, 2, 3, 4)),
}


def trained(splits: Mapping[str, Split], plan: Plan, model: str, seed: int) -> CNNClassifier:
    """``model`` trained with notebook 01's recipe at ``plan.model_profile`` (the default CNN's
    checkpoint is notebook 01's own, so it costs nothing once 01 ran)."""
    return baseline.fit_recipe(splits, plan.model_profile, seed, model=model)


def accuracy(classifier: CNNClassifier, splits: Mapping[str, Split], plan: Plan, keys: Mapping,
             class_names: Sequence[str]) -> tuple[list[dict], list, dict]:  # fmt: skip
    """Val and test metrics of a trained classifier with each of ``plan.ttas`` (params ``tta``;
    wall time: its training), their per-image predictions and the probabilities
    (``{tta: {split: proba}}``)."""
    rows, saved, proba_of = [], [], {}
    for tta in plan.ttas:
        proba_of[tta] = {}
        for split in ("val", "test"):
            proba_of[tta][split] = proba = classifier.predict_proba_tta(splits[split].images, tta)
            evaluation = evaluate(splits[split].labels, proba, class_names)
            rows += results.rows(evaluation.metrics, split=split, params={"tta": tta},
                                 wall_seconds=classifier.fit_seconds_, **keys)  # fmt: skip
            saved.append(predictions.of(evaluation, split, params={"tta": tta}, **keys))
    return rows, saved, proba_of


def costs(models: Sequence[str], images: np.ndarray, plan: Plan, progress: bool = True) -> pd.DataFrame:
    """Parameters, MFLOP per image and training and inference images/s (torch fp32, batch
    ``plan.batch_size``, this machine's threads) of each architecture, on random weights."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in tqdm(models, desc="cost", unit="model", disable=not progress):
            rows += bench_model(name, images, (plan.batch_size,), ("torch-fp32",), plan.bench_seconds, Path(folder))
    table = pd.DataFrame(rows)
    speed = table.pivot_table(index="model", columns="mode", values="images_per_second", sort=False)
    return (table.drop_duplicates("model").set_index("model")[["parameters", "mflops_per_image"]]
            .join(speed.add_suffix("_images_per_second")).reset_index())  # fmt: skip


def calibration(proba: Mapping[str, np.ndarray], splits: Mapping[str, Split]) -> dict:
    """Test probabilities (``proba``: ``{"val": ..., "test": ...}`` of one network) as the
    network gives them and after temperature scaling fitted on val: ``{"temperature", "raw",
    "calibrated", "ece_uncalibrated", "ece"}`` (ECE on test)."""
    temperature = fit_temperature(proba["val"], splits["val"].labels)
    calibrated = sharpen(proba["test"], temperature)
    labels = splits["test"].labels
    return {"temperature": temperature, "raw": proba["test"], "calibrated": calibrated,
            "ece_uncalibrated": expected_calibration_error(proba["test"], labels),
            "ece": expected_calibration_error(calibrated, labels)}  # fmt: skip


def reliability_tables(probabilities: Mapping[str, np.ndarray], labels: np.ndarray) -> dict[str, pd.DataFrame]:
    """The reliability table (``core.calibration.reliability``) of each named set of probabilities."""
    return {name: reliability(proba, labels) for name, proba in probabilities.items()}


def corruption_subset(test: Split, plan: Plan, seed: int) -> Split:
    """``plan.corrupted_images`` test images drawn at random with ``seed`` (kept in split
    order; all of them when None), on which the corruptions are measured."""
    if plan.corrupted_images is None or plan.corrupted_images >= len(test):
        return test
    return test.subset(np.sort(np.random.default_rng(seed).permutation(len(test))[: plan.corrupted_images]))


def corrupted(images: np.ndarray, severities: Sequence[int], flag: str, seed: int, progress: bool = True):
    """Each corruption of ``flag``'s MedMNIST-C set at each of ``severities`` applied to
    ``images``, yielded as ``(name, severity, corrupted images, seconds it took)``."""
    for name in tqdm(list(corruptions.corruptions(flag)), desc="corruptions", disable=not progress):
        for severity in severities:
            start = time.perf_counter()
            out = corruptions.corrupt(images, name, severity, flag, seed)
            yield name, severity, out, time.perf_counter() - start


def robustness(classifier: CNNClassifier, test: Split, plan: Plan, keys: Mapping, class_names: Sequence[str],
               flag: str = "bloodmnist", progress: bool = True) -> tuple[list[dict], list, dict]:  # fmt: skip
    """The classifier (no TTA) on ``corruption_subset`` clean (``corruption`` none) and under every
    corruption at each of ``plan.severities`` (params ``corruption`` and ``severity``, medmnistc's 0..4; split
    ``test_corrupted``), then per severity the mean accuracy over the corruptions and its drop
    from clean; returns the rows, their per-image predictions and the first image of each
    (corruption, severity) for a gallery."""
    clean = corruption_subset(test, plan, keys["seed"])
    rows, saved, examples, accuracy_of = [], [], {}, {}
    sets = [("none", 0, clean.images, 0.0), *corrupted(clean.images, plan.severities, flag, keys["seed"], progress)]
    for name, severity, images, corrupt_seconds in sets:
        start = time.perf_counter()
        evaluation = evaluate(clean.labels, classifier.predict_proba_tta(images, "none"), class_names)
        params = {"corruption": name, "severity": severity, "images": len(clean)}
        rows += results.rows({"accuracy": evaluation.metrics["accuracy"], "macro_f1": evaluation.metrics["macro_f1"],
                              "corruption_seconds": corrupt_seconds}, split=CORRUPTED,
                             wall_seconds=time.perf_counter() - start, params=params, **keys)  # fmt: skip
        saved.append(predictions.of(evaluation, CORRUPTED, params=params, **keys))
        examples[(name, severity)] = images[0]
        accuracy_of[(name, severity)] = evaluation.metrics["accuracy"]
    for severity in plan.severities:
        mean = np.mean([value for (name, level), value in accuracy_of.items() if level == severity and name != "none"])
        params = {"severity": severity, "images": len(clean)}
        rows += results.rows({"mean_corrupted_accuracy": mean, "accuracy_drop": accuracy_of[("none", 0)] - mean},
                             split=CORRUPTED, wall_seconds=float("nan"), params=params, **keys)  # fmt: skip
    return rows, saved, examples


def deduplicated(test_proba: np.ndarray, test: Split, leaked: np.ndarray, keys: Mapping, params: Mapping,
                 class_names: Sequence[str]) -> tuple[list[dict], list]:  # fmt: skip
    """Test metrics without the ``leaked`` images (split ``test_deduplicated``) and their predictions."""
    kept = np.setdiff1d(np.arange(len(test)), leaked)
    evaluation = evaluate(test.labels[kept], test_proba[kept], class_names)
    run = {**keys, "params": {**params, "left_out": len(leaked)}}
    return (results.rows(evaluation.metrics, split=DEDUPLICATED, wall_seconds=float("nan"), **run),
            [predictions.of(evaluation, DEDUPLICATED, **run)])  # fmt: skip


def duplicate_audit(splits: Mapping[str, Split], plan: Plan) -> tuple[pd.DataFrame, np.ndarray]:
    """Every pair of images within and across the splits whose perceptual hashes differ in at
    most ``plan.inspect_distance`` bits (``data.duplicates``; near duplicates are those within
    ``plan.max_distance``), and the test images with a near duplicate in train or val (to leave
    out of a de-duplicated test)."""
    pairs = duplicates.near_duplicates({name: split.images for name, split in splits.items()}, plan.inspect_distance)
    return pairs, duplicates.leaked(pairs[pairs["distance"] <= plan.max_distance], "test")
