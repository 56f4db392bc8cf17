"""What notebook 01 runs: supervised baselines, one CNN per (label fraction, seed), evaluated
on val and test (its plan per profile)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from tqdm.auto import tqdm

from bloodssl import predictions, results
from bloodssl.core.checkpoints import checkpoint_path
from bloodssl.core.evaluate import Evaluation, evaluate
from bloodssl.data import Split
from bloodssl.data.splits import labelled_subset, mask_labels
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.profiles import PROFILES


@dataclass(frozen=True)
class Plan:
    """Notebook 01 at one profile: the label ``fractions`` and the CNN's ``CNNClassifier``
    parameters (``cnn``: epochs and images per epoch, from ``bloodssl.profiles``)."""

    fractions: tuple[float, ...]
    cnn: dict


#: the notebook these runs belong to: its checkpoints serve notebooks 07 and 08 too
STEM = "01_data_and_baseline"

PLANS: dict[str, Plan] = {
    name: Plan((1.0,), {"epochs": size.epochs, "min_epoch_samples": size.epoch_samples})
    for name, size in PROFILES.items()
}


@dataclass
class Run:
    """One trained classifier and its evaluation on each split."""

    method: str
    fraction: float
    seed: int
    classifier: CNNClassifier
    evaluations: dict[str, Evaluation]
    inference_images_per_second: float
    #: settings that tell this run from others of the same method and fraction (how its labels were chosen,
    #: labels per class, a learning rate)
    params: dict = field(default_factory=dict)
    #: what the whole method cost, where ``classifier`` is its last network (default: the classifier's fit)
    wall_seconds: float | None = None
    #: the method's own measurements on the training split in place of the classifier's best epoch (a method
    #: of several networks: its best step, how many of its pseudo-labels are right)
    train_metrics: dict | None = None

    def rows(self, profile: str) -> list[dict]:
        """The run as tidy result rows (metrics per split, then speed)."""
        seconds = self.classifier.fit_seconds_ if self.wall_seconds is None else self.wall_seconds
        keys = dict(method=self.method, model=self.classifier.model, label_fraction=self.fraction,
                    n_labels=self.classifier.n_labels_, seed=self.seed,
                    wall_seconds=seconds, profile=profile, params=self.params)  # fmt: skip
        out = []
        for split, evaluation in self.evaluations.items():
            out += results.rows(evaluation.metrics, split=split, **keys)
        speed = {"train_images_per_second": self.classifier.train_images_per_second_}
        speed |= {"best_epoch": self.classifier.best_epoch_} if self.train_metrics is None else self.train_metrics
        out += results.rows(speed, split="train", **keys)
        out += results.rows({"inference_images_per_second": self.inference_images_per_second},
                            split="test", **keys)  # fmt: skip
        return out

    def predictions(self, profile: str) -> list[predictions.Prediction]:
        """The per-image probabilities behind ``rows``, one per split."""
        keys = dict(method=self.method, model=self.classifier.model, label_fraction=self.fraction, seed=self.seed,
                    profile=profile, params=self.params)  # fmt: skip
        return [predictions.of(evaluation, split, **keys) for split, evaluation in self.evaluations.items()]


def fit_classifier(
    splits: Mapping[str, Split],
    *,
    fraction: float,
    seed: int,
    stem: str,
    profile: str,
    method: str = "supervised",
    **params,
) -> CNNClassifier:
    """A ``CNNClassifier`` trained on ``fraction`` of the training labels (nested across
    fractions for one seed), its epoch selected on the val split; checkpointed under
    ``stem``, so a second call with the same settings (another notebook's) costs nothing."""
    train, val = splits["train"], splits["val"]
    labelled = labelled_subset(train.labels, fraction=fraction, seed=seed)
    model = params.get("model", "cnn")
    classifier = CNNClassifier(
        seed=seed, checkpoint=checkpoint_path(stem, method, model, fraction, seed, profile), **params
    )
    return classifier.fit(train.images, mask_labels(train.labels, labelled), eval_set=(val.images, val.labels))


def fit_recipe(splits: Mapping[str, Split], profile: str, seed: int, stem: str = STEM, **changes) -> CNNClassifier:
    """Notebook 01's CNN at ``profile`` and ``seed`` on every training label (its checkpoint under
    ``stem``, so free in another notebook once 01 ran); ``changes`` alter its recipe
    (``model="small_cnn", epochs=10``)."""
    cnn = {**PLANS[profile].cnn, **changes}
    return fit_classifier(splits, fraction=1.0, seed=seed, stem=stem, profile=profile, progress=False, **cnn)


def train_and_evaluate(
    splits: Mapping[str, Split],
    *,
    fraction: float,
    seed: int,
    stem: str,
    profile: str,
    method: str = "supervised",
    class_names: Sequence[str] | None = None,
    **params,
) -> Run:
    """Train a ``CNNClassifier`` (``fit_classifier``) and evaluate it on val and test; the
    test split is only predicted once, at the end."""
    classifier = fit_classifier(splits, fraction=fraction, seed=seed, stem=stem, profile=profile, method=method,
                                **params)  # fmt: skip
    return evaluated(classifier, splits, method=method, fraction=fraction, seed=seed, class_names=class_names)


def evaluated(
    classifier: CNNClassifier,
    splits: Mapping[str, Split],
    *,
    method: str,
    fraction: float,
    seed: int,
    class_names: Sequence[str] | None = None,
    params: Mapping | None = None,
    wall_seconds: float | None = None,
    train_metrics: dict | None = None,
) -> Run:
    """A fitted ``classifier`` evaluated on val and test (the test split predicted once, at
    the end), with its inference speed over both; ``wall_seconds`` and ``train_metrics`` as in
    ``Run``."""
    evaluations = {}
    start = time.perf_counter()
    for name in ("val", "test"):
        evaluations[name] = evaluate(splits[name].labels, classifier.predict_proba(splits[name].images), class_names)
    seconds = time.perf_counter() - start
    speed = (len(splits["val"]) + len(splits["test"])) / seconds
    return Run(method, fraction, seed, classifier, evaluations, speed, dict(params or {}), wall_seconds, train_metrics)


def sweep(
    splits: Mapping[str, Split],
    *,
    fractions: Iterable[float],
    seeds: Iterable[int],
    stem: str,
    profile: str,
    **params,
) -> tuple[list[Run], pd.DataFrame]:
    """Every (fraction, seed) pair; returns the runs and their tidy results."""
    pairs = [(f, s) for f in fractions for s in seeds]
    runs = [
        train_and_evaluate(splits, fraction=f, seed=s, stem=stem, profile=profile, **params)
        for f, s in tqdm(pairs, desc="runs", unit="run")
    ]
    table = results.frame(row for run in runs for row in run.rows(profile))
    return runs, table
