"""What notebook 04 runs: its plan per profile, the selection rules, the sweep and its tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from bloodssl import predictions, results
from bloodssl.core.checkpoints import checkpoint_path
from bloodssl.core.evaluate import Evaluation, evaluate
from bloodssl.core.prediction import cached_proba
from bloodssl.data import Split
from bloodssl.data.splits import labelled_subset, mask_labels
from bloodssl.methods.registry import METHODS, get_method
from bloodssl.methods.staged import StagedNetworks
from bloodssl.methods.supervised import CNNClassifier


@dataclass(frozen=True)
class Schedule:
    """A longer FixMatch schedule: ``params`` override ``Plan.fixmatch`` (at least ``steps``),
    run on every seed at ``fractions``."""

    params: dict
    fractions: tuple[float, ...]


@dataclass(frozen=True)
class Plan:
    """What notebook 04 runs at one profile.

    Every method starts from the same round-0 CNN (``base``: ``CNNClassifier`` parameters)
    and uses ``self_training`` (``SelfTrainingCNN`` parameters). The ``headline`` rule (a
    global confidence threshold) runs on every fraction and seed of the profile; the other
    selection rules, compared side by side with it, run on the first seed at
    ``compare_fractions`` with ``compare_rounds`` rounds (their round 1 is the headline's
    round 1 with another rule), which keeps the comparison affordable on 2 cores.
    ``fixmatch`` holds the ``FixMatchCNN`` parameters of the FixMatch runs, on every seed at
    ``online_fractions``; each of ``longer`` reruns them on a longer schedule (is the schedule
    the limit?). ``engine_methods`` (registered names of other methods on the online engine)
    run on FixMatch's schedule (``on_fixmatch_schedule``) at the same fractions and seeds.
    ``raw_thresholds`` are global thresholds also compared on the network's own probabilities
    (``temperature=1``) instead of the temperature-scaled ones: what calibration changes in the
    choice of pseudo-labels.
    """

    fractions: tuple[float, ...]
    thresholds: tuple[float, ...]
    headline: float
    compare_rounds: int
    compare_fractions: tuple[float, ...]
    base: dict = field(default_factory=dict)
    self_training: dict = field(default_factory=dict)
    fixmatch: dict = field(default_factory=dict)
    longer: tuple[Schedule, ...] = ()
    engine_methods: tuple[str, ...] = ("flexmatch", "mean_teacher")
    online_fractions: tuple[float, ...] = ()
    raw_thresholds: tuple[float, ...] = ()


_BASE = dict(model="cnn", class_weight="balanced", min_epoch_samples=4096)
PLANS: dict[str, Plan] = {
    "smoke": Plan(
        fractions=(0.1,), thresholds=(0.5, 0.9), headline=0.5, compare_rounds=1, compare_fractions=(0.1,),
        # a base CNN clearly above chance; with a smaller one the self-trained students stayed at chance
        base={**_BASE, "epochs": 3, "min_epoch_samples": 2048},
        self_training=dict(rounds=2, round_epochs=1, strong_views=1, top_k=10, precision=0.9),
        fixmatch=dict(steps=10, eval_every=5, labelled_batch=16, unlabelled_ratio=2, teacher="average", align=True),
        longer=(Schedule(dict(steps=20, eval_every=10), (0.1,)),), online_fractions=(0.1,), raw_thresholds=(0.9,),
    ),
    # default: 5 % labels only, one view per prediction (8-view predictions made up most of a self-trained run's
    # cost on the 2-core machine of 2026-11-29, which trains the CNN at ~600 images/s: notebook 01's results) and
    # short schedules; 1 % labels, the long FixMatch schedules and the wider comparisons are the `full` profile's
    # (6 epochs of the round-0 CNN, 2 of a self-training round, 100 steps of each online method: about 4 min a seed)
    "default": Plan(
        fractions=(0.05,), thresholds=(0.5,), headline=0.5, compare_rounds=1, compare_fractions=(0.05,),
        base={**_BASE, "epochs": 6, "tta": "none"},
        self_training=dict(rounds=1, round_epochs=2, strong_views=1, top_k=500, precision=0.97),
        # 2 unlabelled images per labelled one instead of 7 cut a step's cost by about 60 %; the guards (averaged
        # teacher, distribution alignment) keep the pseudo-labels from drifting on a short schedule
        fixmatch=dict(steps=100, eval_every=50, unlabelled_ratio=2, threshold=0.95, ema_decay=0.99,
                      teacher="average", align=True),
        online_fractions=(0.05,), raw_thresholds=(0.5,),
    ),
    "full": Plan(
        fractions=(0.01, 0.05, 0.1), thresholds=(0.5, 0.7, 0.9, 0.97, 0.99), headline=0.5,
        compare_rounds=3, compare_fractions=(0.01, 0.05, 0.1), base={**_BASE, "epochs": 40},
        self_training=dict(rounds=3, round_epochs=10, strong_views=4, top_k=500, precision=0.97),
        # measured at 1 % labels (seed 0): the plain recipe (online teacher, no alignment) let its pseudo-labels
        # drift from 95 % to 87 % right and ended below the supervised CNN; the guards keep them near 94 %.
        # At 5 % the 3000-step runs' validation accuracy still rose at the last step: 9000 steps (~50 min a run)
        fixmatch=dict(steps=3000, eval_every=200, threshold=0.95, ema_decay=0.997, teacher="average", align=True),
        longer=(Schedule(dict(steps=9000, eval_every=500, ema_decay=0.999), (0.01, 0.05)),),
        online_fractions=(0.01, 0.05, 0.1), raw_thresholds=(0.5, 0.9, 0.97),
    ),
}  # fmt: skip


def on_fixmatch_schedule(sizes: Plan, method: str) -> dict:
    """``sizes.fixmatch`` restricted to the parameters the registered ``method`` takes: the
    same steps, batches, learning rate, averaging and evaluation cadence (and, for a
    FixMatch variant, the same threshold and guards), so only the method differs."""
    accepted = get_method(method).get_params(deep=False)
    return {name: value for name, value in sizes.fixmatch.items() if name in accepted}


@dataclass(frozen=True)
class Variant:
    """One method at one setting: the registered ``method`` (``bloodssl.methods.METHODS``),
    the ``setting`` that tells it apart from the notebook's other runs of that method (the
    ``params`` column of the results) and the estimator's parameters ``params``."""

    method: str
    setting: dict
    params: dict

    @property
    def name(self) -> str:
        """How tables and plots call it, e.g. ``fixmatch (steps=3000)``."""
        return results.display_name(self.method, self.setting)

    def with_params(self, **params) -> Variant:
        """The same variant with ``params`` changed (not its setting: e.g. fewer rounds)."""
        return Variant(self.method, self.setting, {**self.params, **params})


def methods(sizes: Plan, **overrides) -> dict[str, Variant]:
    """The self-training selection rules (global thresholds, ``per_class``, ``top_k``, and
    global thresholds on uncalibrated probabilities) by name; ``overrides`` replace any of their
    ``SelfTrainingCNN`` parameters."""
    shared = {**sizes.self_training, **overrides}
    settings = [{"selection": "threshold", "threshold": t} for t in sizes.thresholds]
    settings += [{"selection": "threshold", "threshold": t, "temperature": 1.0} for t in sizes.raw_thresholds]
    settings += [{"selection": "per_class"}, {"selection": "top_k"}]
    variants = [Variant("self_training", setting, {**shared, **setting}) for setting in settings]
    return {variant.name: variant for variant in variants}


def headline(sizes: Plan) -> Variant:
    """The headline rule: a global threshold of ``sizes.headline``."""
    return methods(sizes)[
        results.display_name("self_training", {"selection": "threshold", "threshold": sizes.headline})
    ]


def fixmatch(sizes: Plan, schedule: Schedule | None = None, **changes) -> Variant:
    """FixMatch at the plan's settings (on ``schedule`` if given), named by its steps and
    any of ``changes`` (e.g. ``teacher="online", align=False`` for the plain recipe)."""
    params = {**sizes.fixmatch, **(schedule.params if schedule else {}), **changes}
    return Variant("fixmatch", {"steps": params["steps"], **changes}, params)


def on_engine(sizes: Plan, method: str) -> Variant:
    """Another registered online method on FixMatch's schedule (``on_fixmatch_schedule``)."""
    params = on_fixmatch_schedule(sizes, method)
    return Variant(method, {"steps": params["steps"]}, params)


@dataclass
class Run:
    """One self-trained classifier at one label fraction and seed, evaluated round by round."""

    variant: Variant
    fraction: float
    seed: int
    classifier: StagedNetworks
    evaluations: dict[str, Evaluation]
    round_evaluations: list[Evaluation]
    inference_images_per_second: float

    @property
    def method(self) -> str:
        """The variant's name (``Variant.name``)."""
        return self.variant.name

    def rounds(self) -> pd.DataFrame:
        """The classifier's round log with the test accuracy and macro-F1 of each round."""
        table = pd.DataFrame(self.classifier.rounds_)
        table["test_accuracy"] = [e.metrics["accuracy"] for e in self.round_evaluations]
        table["test_macro_f1"] = [e.metrics["macro_f1"] for e in self.round_evaluations]
        return table.assign(method=self.method, label_fraction=self.fraction, seed=self.seed)

    def wall_seconds(self) -> float:
        """Training seconds of every network plus the seconds spent choosing pseudo-labels."""
        clf = self.classifier
        return sum(m.fit_seconds_ for m in clf.estimators_) + sum(r.get("select_seconds", 0.0) for r in clf.rounds_)

    def rows(self, profile: str) -> list[dict]:
        """Tidy rows: final val/test metrics, each round's metrics (``round`` column) and speed."""
        clf = self.classifier
        keys = dict(method=self.variant.method, params=self.variant.setting, model=clf.estimators_[0].model,
                    label_fraction=self.fraction, n_labels=clf.estimators_[0].n_labels_, seed=self.seed,
                    profile=profile, wall_seconds=self.wall_seconds())  # fmt: skip
        out = []
        for split, evaluation in self.evaluations.items():
            out += results.rows(evaluation.metrics, split=split, **keys)
        for record, evaluation in zip(clf.rounds_, self.round_evaluations, strict=True):
            at_round = {**keys, "round": record["round"]}
            out += results.rows({name: evaluation.metrics[name] for name in ("accuracy", "macro_f1")}, split="test",
                                **at_round)  # fmt: skip
            out += results.rows({"accuracy": record["val_accuracy"]}, split="val", **at_round)
            out += results.rows({"n_pseudo": record["n_pseudo"], "pseudo_accuracy": record["pseudo_accuracy"]},
                                split="train", **at_round)  # fmt: skip
        seconds = sum(m.fit_seconds_ for m in clf.estimators_)
        images = sum(m.train_images_per_second_ * m.fit_seconds_ for m in clf.estimators_)
        out += results.rows({"train_images_per_second": images / max(seconds, 1e-9), "rounds": clf.n_iter_},
                            split="train", **keys)  # fmt: skip
        out += results.rows({"inference_images_per_second": self.inference_images_per_second},
                            split="test", **keys)  # fmt: skip
        return out

    def supervised_rows(self, profile: str) -> list[dict]:
        """The round-0 network (labels only) as ``method='supervised'`` rows: the baseline,
        with its validation accuracy so that it competes with the methods on validation."""
        base = self.classifier.estimators_[0]
        keys = dict(method="supervised", model=base.model, label_fraction=self.fraction, n_labels=base.n_labels_,
                    seed=self.seed, profile=profile, wall_seconds=base.fit_seconds_)  # fmt: skip
        test = results.rows(self.round_evaluations[0].metrics, split="test", **keys)
        return test + results.rows({"accuracy": self.classifier.rounds_[0]["val_accuracy"]}, split="val", **keys)

    def predictions(self, profile: str) -> list[predictions.Prediction]:
        """The per-image probabilities behind ``rows``: the final network's on each split and
        each round's on the test split."""
        keys = dict(method=self.variant.method, params=self.variant.setting, model=self.classifier.estimators_[0].model,
                    label_fraction=self.fraction, seed=self.seed, profile=profile)  # fmt: skip
        out = [predictions.of(evaluation, split, **keys) for split, evaluation in self.evaluations.items()]
        rounds = zip(self.classifier.rounds_, self.round_evaluations, strict=True)
        return out + [
            predictions.of(evaluation, "test", **keys, round=record["round"]) for record, evaluation in rounds
        ]

    def supervised_predictions(self, profile: str) -> list[predictions.Prediction]:
        """The round-0 network's test probabilities, behind ``supervised_rows``."""
        keys = dict(method="supervised", model=self.classifier.estimators_[0].model, label_fraction=self.fraction,
                    seed=self.seed, profile=profile)  # fmt: skip
        return [predictions.of(self.round_evaluations[0], "test", **keys)]


def self_train(
    splits: Mapping[str, Split],
    *,
    variant: Variant,
    base: Mapping,
    fraction: float,
    seed: int,
    stem: str,
    profile: str,
) -> Run:
    """Train one ``variant`` on ``fraction`` of the training labels and evaluate it.

    The round-0 CNN's checkpoint is shared by every method at the same fraction and seed,
    so it is trained once. The variant's method is ``self_training`` or another registered
    estimator of the same shape (``fixmatch``, ``mean_teacher``, ...; see
    ``bloodssl.methods.METHODS``). The hidden training labels only feed
    the pseudo-label accuracy log; the test split is predicted once per round, for reporting.
    """
    train, val, test = splits["train"], splits["val"], splits["test"]
    labelled = labelled_subset(train.labels, fraction=fraction, seed=seed)
    model = base.get("model", "cnn")
    shared = checkpoint_path(stem, "supervised", model, fraction, seed, profile)
    estimator = CNNClassifier(**base, seed=seed, progress=False, checkpoint=shared)
    folder = checkpoint_path(stem, variant.name.replace(" ", ""), model, fraction, seed, profile).with_suffix("")
    classifier = METHODS[variant.method](estimator, **variant.params, checkpoint_dir=folder)
    classifier.fit(train.images, mask_labels(train.labels, labelled), eval_set=(val.images, val.labels),
                   y_true=train.labels)  # fmt: skip
    staged = [evaluate(test.labels, proba) for proba in classifier.staged_predict_proba(test.images)]
    evaluations = {"val": evaluate(val.labels, cached_proba(classifier.estimators_[-1], val.images)),
                   "test": staged[-1]}  # fmt: skip
    speed = classifier.estimators_[-1].throughput(test.images[:512])
    return Run(variant, fraction, seed, classifier, evaluations, staged, speed)


def sweep(
    splits: Mapping[str, Split],
    variants: Iterable[Variant],
    *,
    fractions: Iterable[float],
    seeds: Iterable[int],
    base: Mapping,
    stem: str,
    profile: str,
) -> tuple[list[Run], pd.DataFrame]:
    """Every (variant, fraction, seed); returns the runs and their tidy results, with the
    round-0 supervised baseline once per (fraction, seed)."""
    jobs = [(v, f, s) for f in fractions for s in seeds for v in variants]
    shared = dict(base=base, stem=stem, profile=profile)
    runs = [self_train(splits, variant=v, fraction=f, seed=s, **shared)
            for v, f, s in tqdm(jobs, desc="runs", unit="run")]  # fmt: skip
    records = [row for run in runs for row in run.rows(profile)]
    baselines = {(run.fraction, run.seed): run for run in runs}
    records += [row for run in baselines.values() for row in run.supervised_rows(profile)]
    return runs, results.frame(records)


def final_networks(runs: Iterable[Run], method: str) -> list[tuple[Run, CNNClassifier, Evaluation]]:
    """The network ``method`` ends with in each of ``runs``, with its test evaluation: the
    last network of the runs of ``method``; for ``supervised``, the round-0 network, once
    per fraction and seed (every method of a fraction and seed starts from the same one)."""
    if method == "supervised":
        firsts = {(run.fraction, run.seed): run for run in runs}
        return [(run, run.classifier.estimators_[0], run.round_evaluations[0]) for run in firsts.values()]
    chosen = [(run, run.classifier.estimators_[-1], run.evaluations["test"]) for run in runs if run.method == method]
    if not chosen:
        raise ValueError(f"no run of method {method!r} among the runs given")
    return chosen


def final_probabilities(
    runs: Iterable[Run], methods: Iterable[str], images: np.ndarray
) -> dict[int, dict[str, np.ndarray]]:
    """Per seed, the probabilities that the final network of each of ``methods`` (as
    ``final_networks``) gives ``images``; only the seeds on which every method ran.
    ``runs`` must share one label fraction."""
    runs, methods = list(runs), list(methods)
    fractions = {run.fraction for run in runs}
    if len(fractions) > 1:
        raise ValueError(f"runs span label fractions {sorted(fractions)}; pass the runs of one fraction")
    by_seed: dict[int, dict[str, np.ndarray]] = {}
    for method in methods:
        for run, network, _ in final_networks(runs, method):
            by_seed.setdefault(run.seed, {})[method] = cached_proba(network, images)
    return {seed: proba for seed, proba in sorted(by_seed.items()) if len(proba) == len(methods)}


def run_predictions(runs: Iterable[Run], profile: str) -> list[predictions.Prediction]:
    """Every per-image prediction behind ``sweep``'s rows of ``runs``, the supervised baseline's once."""
    runs = list(runs)
    baselines = {(run.fraction, run.seed): run for run in runs}
    return [p for run in runs for p in run.predictions(profile)] + [
        p for run in baselines.values() for p in run.supervised_predictions(profile)]  # fmt: skip


def round_table(runs: Iterable[Run]) -> pd.DataFrame:
    """The round logs of ``runs`` stacked (one row per run and round)."""
    return pd.concat([run.rounds() for run in runs], ignore_index=True)


def history_table(runs: Iterable[Run]) -> pd.DataFrame:
    """The evaluation records of the FixMatch ``runs`` stacked, with their method, fraction and seed."""
    return pd.DataFrame([{**record, "method": run.method, "label_fraction": run.fraction, "seed": run.seed}
                         for run in runs for record in run.classifier.history_])  # fmt: skip
