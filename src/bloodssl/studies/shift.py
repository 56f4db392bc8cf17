"""Notebook 07's robustness to a different slide: the test images under every MedMNIST-C
corruption at the plan's severities (``corrupted``), a trained network's accuracy on each set
and its mean per severity (``robustness``), and the corrupted copy of the training images the
robustness recipe trains on beside them (``medmnistc_copy``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from bloodssl import paths, results
from bloodssl.core.evaluate import evaluate
from bloodssl.core.hashing import fingerprint
from bloodssl.data import Split, corruptions
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.studies.architectures import CORRUPTED, Plan, kept


def medmnistc_copy(train: Split, flag: str, seed: int, progress: bool = True) -> np.ndarray:
    """``data.corruptions.augmented`` of the training images, kept in ``data/processed/medmnistc``
    under the images' fingerprint, ``flag`` and ``seed``: the checkpoints of the recipe are keyed by
    the copy, so a re-run costs neither the ~3 minutes of corrupting nor the training."""
    path = paths.DATA_PROCESSED / "medmnistc" / f"{flag}-seed{seed}-{fingerprint(train.images)[:12]}.npy"
    if path.is_file():
        return np.load(path)
    copy = corruptions.augmented(train.images, flag, seed, progress=progress)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")  # written whole, then renamed: never a truncated cache
    np.save(partial, copy)
    partial.replace(path)
    return copy


def corruption_subset(test: Split, plan: Plan, seed: int) -> Split:
    """``plan.corrupted_images`` test images drawn at random with ``seed`` (kept in split
    order; all of them when None), on which the corruptions are measured."""
    if plan.corrupted_images is None or plan.corrupted_images >= len(test):
        return test
    return test.subset(np.sort(np.random.default_rng(seed).permutation(len(test))[: plan.corrupted_images]))


def corrupted(test: Split, plan: Plan, seed: int, flag: str = "bloodmnist",
              progress: bool = True) -> list[tuple[str, int, np.ndarray, float]]:  # fmt: skip
    """``corruption_subset`` of ``test`` clean (``none``, severity 0) and under each corruption
    of ``flag``'s MedMNIST-C set at each of ``plan.severities``: ``(name, severity, images,
    seconds it took)``, computed once for every classifier ``robustness`` scores."""
    images = corruption_subset(test, plan, seed).images
    out = [("none", 0, images, 0.0)]
    for name in tqdm(list(corruptions.corruptions(flag)), desc="corruptions", disable=not progress):
        for severity in plan.severities:
            start = time.perf_counter()
            out.append((name, severity, corruptions.corrupt(images, name, severity, flag, seed),
                        time.perf_counter() - start))  # fmt: skip
    return out


def robustness(classifier: CNNClassifier, labels: np.ndarray, sets: Sequence[tuple[str, int, np.ndarray, float]],
               keys: Mapping, settings: Mapping, class_names: Sequence[str]) -> tuple[list[dict], list]:  # fmt: skip
    """The classifier (no TTA) on each of ``corrupted``'s ``sets`` of images (true ``labels``;
    split ``test_corrupted``, params its ``settings``, ``corruption``, ``severity`` and
    ``images``), then per severity the mean accuracy over the corruptions and its drop from
    clean; returns the rows and their per-image predicted labels."""
    rows, saved, accuracy_of = [], [], {}
    for name, severity, images, corrupt_seconds in sets:
        start = time.perf_counter()
        evaluation = evaluate(labels, classifier.predict_proba_tta(images, "none"), class_names)
        params = {**settings, "corruption": name, "severity": severity, "images": len(labels)}
        rows += results.rows({"accuracy": evaluation.metrics["accuracy"], "macro_f1": evaluation.metrics["macro_f1"],
                              "corruption_seconds": corrupt_seconds}, split=CORRUPTED,
                             wall_seconds=time.perf_counter() - start, params=params, **keys)  # fmt: skip
        # hard labels: this split reports accuracy and macro-F1 only, for ~50 sets of images per network
        saved.append(kept(labels, evaluation.proba, CORRUPTED, labels_only=True, params=params, **keys))
        accuracy_of[(name, severity)] = evaluation.metrics["accuracy"]
    for severity in sorted({level for name, level, *_ in sets if name != "none"}):
        mean = np.mean([value for (name, level), value in accuracy_of.items() if level == severity and name != "none"])
        params = {**settings, "severity": severity, "images": len(labels)}
        rows += results.rows({"mean_corrupted_accuracy": mean, "accuracy_drop": accuracy_of[("none", 0)] - mean},
                             split=CORRUPTED, wall_seconds=float("nan"), params=params, **keys)  # fmt: skip
    return rows, saved
