"""What notebook 07 runs: which network to use (accuracy and cost of the registry's
architectures), whether its probabilities mean anything (calibration before and after
temperature scaling), whether it survives a stained, blurred or badly lit slide (MedMNIST-C's
corruptions at five severities) and whether the test split leaks into training (exact and
perceptual-hash duplicates). Its plan per profile is ``PLANS``.

A trained network's recipe is its params ``augment``: notebook 01's (``cell``: dihedral
transforms, shifts and a mild colour jitter), the same with a MedMNIST-C copy of every training
image beside it (``cell+medmnistc``, ``data.corruptions.augmented``: the robustness recipe
MedMNIST-C's authors propose) or another of ``data.recipes`` (the augmentation ablation).
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

from bloodssl import paths, predictions, results
from bloodssl.core.calibration import expected_calibration_error, fit_temperature, reliability, sharpen
from bloodssl.core.evaluate import evaluate
from bloodssl.core.hashing import fingerprint
from bloodssl.data import Split, corruptions, duplicates
from bloodssl.deploy.bench import bench_model
from bloodssl.deploy.memory import peak_memory_mib
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.studies import baseline

#: the result splits of the corrupted test images and of the test split without its near duplicates
CORRUPTED, DEDUPLICATED = "test_corrupted", "test_deduplicated"
STEM = "07_architectures_and_robustness"
#: the training recipes (params ``augment``): notebook 01's augmentation, and it with a MedMNIST-C copy of the data
CELL, MEDMNISTC = "cell", "cell+medmnistc"


@dataclass(frozen=True)
class Recipe:
    """One network the plan trains (on each of its seeds): an architecture, its augmentation
    (params ``augment``) and its epochs where they are not the plan's (params ``epochs``)."""

    model: str
    augment: str = CELL
    epochs: int | None = None

    @property
    def name(self) -> str:
        """How tables and figures name it: ``augment``, then the epochs of a long schedule."""
        return self.augment + (f", {self.epochs} epochs" if self.epochs else "")


@dataclass(frozen=True)
class Plan:
    """Notebook 07 at one profile: the architectures whose cost is measured
    (``bench_models``, ``bench_seconds`` per measurement) and those trained with notebook 01's
    recipe (``train_models``, its ``model_profile`` plan with ``epochs`` instead of the plan's
    when given, on ``n_seeds`` seeds) and those also trained with the MedMNIST-C recipe
    (``robust_models``), with it for ``long_epochs`` (``long_models``: the 98 % target's long
    schedule) or with each of ``augmentations`` (``ablation_models``); the test
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
    #: the epochs of every network this notebook trains itself (None: the model profile's, notebook 01's checkpoints)
    epochs: int | None = None
    #: architectures also trained with the MedMNIST-C recipe (``MEDMNISTC``)
    robust_models: tuple[str, ...] = ()
    #: the augmentation ablation: ``ablation_models`` trained with each of ``augmentations`` (``data.recipes``)
    ablation_models: tuple[str, ...] = ()
    augmentations: tuple[str, ...] = ()
    #: (architecture, peak learning rate) for those trained at another than notebook 01's recipe's (params ``lr``)
    learning_rates: tuple[tuple[str, float], ...] = ()
    #: architectures also trained with the MedMNIST-C recipe for ``long_epochs`` (params ``epochs``)
    long_models: tuple[str, ...] = ()
    long_epochs: int | None = None

    def __post_init__(self) -> None:
        if self.long_models and not self.long_epochs:
            raise ValueError(f"long_models={self.long_models} need long_epochs: how long is their schedule?")

    def settings(self, recipe: Recipe) -> dict:
        """The result params of ``recipe``: its augmentation, its learning rate where the plan
        changes it and its epochs where they are not the plan's."""
        lr = dict(self.learning_rates).get(recipe.model)
        return {"augment": recipe.augment, **({"lr": lr} if lr is not None else {}),
                **({"epochs": recipe.epochs} if recipe.epochs else {})}  # fmt: skip

    def recipes(self) -> list[Recipe]:
        """Every network the plan trains, on each of its seeds."""
        return [*(Recipe(model) for model in self.train_models), *(Recipe(m, MEDMNISTC) for m in self.robust_models),
                *(Recipe(m, MEDMNISTC, self.long_epochs) for m in self.long_models),
                *(Recipe(m, augment) for m in self.ablation_models for augment in self.augmentations)]  # fmt: skip


#: the architectures that train at >= 500 images/s on 2 cores (notebook 07's cost table)
FAST = ("cnn", "small_cnn", "basic_cnn", "cnn_bn_dropout", "cnn_se")
EVERY = (*FAST, "wide_cnn", "inception_cnn", "vgg_cnn", "resnet18", "efficientnet_lite0", "efficientnet_lite0_64")

# fmt: off
PLANS: dict[str, Plan] = {
    "smoke": Plan(("cnn", "small_cnn"), ("cnn",), 1, 40, 0.2, "smoke", batch_size=16, severities=(0, 4),
                  robust_models=("cnn",), ablation_models=("cnn",), augmentations=("mixup",),
                  long_models=("small_cnn",), long_epochs=4),
    # default: the CNNs notebook 01 trained (free), every architecture's cost, 300 test images corrupted at the
    # target's severity (motion blur through ImageMagick at 224 px costs ~0.1 s an image, most of the time here)
    "default": Plan(EVERY, ("cnn",), 2, 300, 0.3),  # notebook 01's default seeds
    # full (~90 min once notebook 01 ran): the architectures that train at >= 500 images/s, 3 seeds at 6 epochs
    # (default 4), with and without TTA; the CNN and the quarter-size CNN also with the MedMNIST-C recipe, the
    # quarter-size one (the cheapest to train) with every other augmentation; the best at 6 epochs (cnn_se) with the
    # MedMNIST-C recipe for 20 epochs (~12 min a seed) for the 98 % target; 400 test images at every severity
    "full": Plan(EVERY, FAST, 3, 400, 3.0, batch_size=256, ttas=("none", "dihedral"), severities=(0, 1, 2, 3, 4),
                 epochs=6, robust_models=("cnn", "small_cnn"), ablation_models=("small_cnn",),
                 augmentations=("none", "geometric", "noise", "randaugment", "augmix", "mixup", "cutmix"),
                 # the basic CNN has no normalisation layer: at notebook 01's 0.1 it diverged on 2 of 3 seeds
                 # (validation accuracy 20 and 31 %, the first full run of 2026-11-30)
                 learning_rates=(("basic_cnn", 0.02),), long_models=("cnn_se",), long_epochs=20),
}
# fmt: on


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


def trained(splits: Mapping[str, Split], plan: Plan, recipe: Recipe, seed: int,
            medmnistc_copy: np.ndarray | None = None) -> CNNClassifier:  # fmt: skip
    """``recipe.model`` trained with notebook 01's recipe at ``plan.model_profile``, whose
    checkpoint is notebook 01's own (free once 01 ran). With ``plan.epochs``, another
    ``recipe.augment`` or ``recipe.epochs`` it is this notebook's run under a checkpoint of its own
    (so is one at another learning rate, ``plan.settings``): ``augment`` is a name of
    ``data.recipes.RECIPES`` or ``MEDMNISTC``, which trains on ``medmnistc_copy``
    (``medmnistc_copy()`` of the training images) beside the images themselves."""
    augment = recipe.augment
    if augment == MEDMNISTC and medmnistc_copy is None:
        raise ValueError(f"augment={MEDMNISTC!r} trains on a corrupted copy of the data: pass medmnistc_copy")
    changes = {key: value for key, value in plan.settings(recipe).items() if key != "augment"}
    if plan.epochs:
        changes.setdefault("epochs", plan.epochs)  # the plan's schedule, unless the recipe has its own
    if augment == CELL and not changes:
        return baseline.fit_recipe(splits, plan.model_profile, seed, model=recipe.model)
    train = splits["train"]
    if augment == MEDMNISTC:
        train = Split(train.name, np.concatenate([train.images, medmnistc_copy]), np.tile(train.labels, 2))
    # the checkpoint's name: a long schedule's never shares a file with the same recipe at the plan's epochs
    name = ("supervised" if augment == CELL else augment) + (f"-{recipe.epochs}epochs" if recipe.epochs else "")
    return baseline.fit_recipe({**splits, "train": train}, plan.model_profile, seed, stem=STEM, model=recipe.model,
                               method=name, augment=True if augment in (CELL, MEDMNISTC) else augment,
                               **changes)  # fmt: skip


def accuracy(classifier: CNNClassifier, splits: Mapping[str, Split], plan: Plan, keys: Mapping, settings: Mapping,
             class_names: Sequence[str]) -> tuple[list[dict], list, dict]:  # fmt: skip
    """Its training images/s, then val and test metrics of a trained classifier with each of
    ``plan.ttas`` (params: its ``settings`` and ``tta``; wall time: its training), their
    per-image predictions and the probabilities (``{tta: {split: proba}}``)."""
    rows, saved, proba_of = [], [], {}
    for tta in plan.ttas:
        proba_of[tta] = {}
        params = {**settings, "tta": tta}
        # one training, written beside each evaluation of it so that its results rows share one set of params
        rows += results.rows({"train_images_per_second": classifier.train_images_per_second_}, split="train",
                             params=params, wall_seconds=classifier.fit_seconds_, **keys)  # fmt: skip
        for split in ("val", "test"):
            proba_of[tta][split] = proba = classifier.predict_proba_tta(splits[split].images, tta)
            evaluation = evaluate(splits[split].labels, proba, class_names)
            rows += results.rows(evaluation.metrics, split=split, params=params, wall_seconds=classifier.fit_seconds_,
                                 **keys)  # fmt: skip
            saved.append(predictions.of(evaluation, split, params=params, **keys))
    return rows, saved, proba_of


def accuracy_change(rows: Sequence[Mapping]) -> list[dict]:
    """Per model and seed trained with both recipes, the MedMNIST-C recipe's clean test accuracy
    without TTA minus notebook 01's recipe's (metric ``accuracy_change``, params ``augment`` and
    ``tta``) at the plan's epochs: what robustness costs on clean cells."""
    table = results.expand_params(results.frame(rows))
    clean = table[(table["split"] == "test") & (table["metric"] == "accuracy") & (table["tta"] == "none")]
    if "epochs" in clean:  # a long schedule has no twin trained with notebook 01's recipe
        clean = clean[clean["epochs"].isna()]
    wide = clean.pivot_table(index=["model", "seed", "n_labels", "profile"], columns="augment", values="value")
    if MEDMNISTC not in wide or CELL not in wide:
        return []
    out = []
    for (model, seed, n_labels, profile), change in (wide[MEDMNISTC] - wide[CELL]).dropna().items():
        out += results.rows({"accuracy_change": change}, method="supervised", model=model, label_fraction=1.0,
                            n_labels=n_labels, seed=seed, profile=profile, split="test", wall_seconds=float("nan"),
                            params={"augment": MEDMNISTC, "tta": "none"})  # fmt: skip
    return out


def recipe_names(table: pd.DataFrame) -> pd.Series:
    """Each row's ``Recipe.name`` from its params ``augment`` and ``epochs`` (``results.expand_params``);
    NaN for a row without ``augment`` (an architecture's cost)."""
    epochs = table["epochs"] if "epochs" in table else pd.Series(np.nan, index=table.index)
    return pd.Series([Recipe(model, augment, None if pd.isna(epoch) else int(epoch)).name
                      if isinstance(augment, str) else np.nan
                      for model, augment, epoch in zip(table["model"], table["augment"], epochs, strict=True)],
                     index=table.index, dtype=object)  # fmt: skip


def ablation_table(table: pd.DataFrame, models: Sequence[str], severity: int = 3) -> pd.DataFrame:
    """Per model of ``models`` and ``augment`` recipe, mean and std over seeds (``<measure>_std``)
    of: clean test accuracy without TTA (``clean``) and with it (``clean_tta``), mean accuracy
    over the corruptions at ``severity`` (``corrupted``) and training images/s, at the plan's epochs."""
    t = results.expand_params(table[table["model"].isin(models)])
    t = t.assign(**{name: np.nan for name in ("augment", "tta", "severity", "epochs") if name not in t})
    t = t[t["augment"].notna() & t["epochs"].isna()]
    test, accuracy = t["split"] == "test", t["metric"] == "accuracy"
    masks = {
        "clean": test & accuracy & (t["tta"] == "none"),
        "clean_tta": test & accuracy & (t["tta"] == "dihedral"),
        "corrupted": (t["split"] == CORRUPTED)
        & (t["metric"] == "mean_corrupted_accuracy")
        & (t["severity"] == severity),
        "train_images_per_second": (t["split"] == "train")
        & (t["metric"] == "train_images_per_second")
        & (t["tta"] == "none"),  # one row per training (also written beside its TTA evaluations)
    }
    parts = []
    for name, mask in masks.items():
        stats = t[mask].groupby(["model", "augment"], sort=False)["value"].agg(["mean", "std"])
        parts.append(stats.rename(columns={"mean": name, "std": f"{name}_std"}))
    return pd.concat(parts, axis=1).reset_index()


def accuracy_and_cost(table: pd.DataFrame) -> pd.DataFrame:
    """Per architecture trained with notebook 01's recipe (``augment`` cell, no TTA): mean val
    and test accuracy over its seeds (test ``std``, ``n`` seeds) beside its cost on this machine
    (parameters, MFLOP per image, training and inference images/s of torch fp32 on random
    weights), the best on validation first; empty without trained architectures."""
    t = results.expand_params(table)
    t = t.assign(**{name: np.nan for name in ("augment", "tta", "batch_size") if name not in t})
    scored = t[(t["metric"] == "accuracy") & (t["augment"] == CELL) & (t["tta"] == "none")]
    if scored.empty:
        return pd.DataFrame()
    test = scored[scored["split"] == "test"].groupby("model")["value"]
    out = pd.DataFrame({"val_accuracy": scored[scored["split"] == "val"].groupby("model")["value"].mean(),
                        "accuracy": test.mean(), "std": test.std(), "n": test.count()})  # fmt: skip
    cost = t[t["batch_size"].notna()].pivot_table(index="model", columns="metric", values="value")
    return out.join(cost).sort_values("val_accuracy", ascending=False).reset_index()


def fastest_within(table: pd.DataFrame, points: float = 0.5) -> pd.Series:
    """The row of ``accuracy_and_cost`` with the most inference images/s among those whose mean
    validation accuracy is within ``points`` percentage points of the best's (validation picks,
    so the test split never does)."""
    close = table[table["val_accuracy"] >= table["val_accuracy"].max() - points / 100]
    return close.sort_values("inference_images_per_second", ascending=False).iloc[0]


def costs(models: Sequence[str], images: np.ndarray, plan: Plan, progress: bool = True) -> pd.DataFrame:
    """Parameters, MFLOP per image, training and inference images/s (torch fp32, batch
    ``plan.batch_size``, this machine's threads) and the peak memory each adds to a process for
    inference and for training (``deploy.memory``) of each architecture, on random weights."""
    rows, memory = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for name in tqdm(models, desc="cost", unit="model", disable=not progress):
            rows += bench_model(name, images, (plan.batch_size,), ("torch-fp32",), plan.bench_seconds, Path(folder))
            memory[name] = peak_memory_mib(name, plan.batch_size, images.shape[1:])
    table = pd.DataFrame(rows)
    speed = table.pivot_table(index="model", columns="mode", values="images_per_second", sort=False)
    return (table.drop_duplicates("model").set_index("model")[["parameters", "mflops_per_image"]]
            .join(speed.add_suffix("_images_per_second")).join(pd.DataFrame(memory).T).reset_index())  # fmt: skip


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
        saved.append(predictions.of_labels(labels, evaluation.proba.argmax(axis=1), evaluation.proba.shape[1],
                                           CORRUPTED, params=params, **keys))  # fmt: skip
        accuracy_of[(name, severity)] = evaluation.metrics["accuracy"]
    for severity in sorted({level for name, level, *_ in sets if name != "none"}):
        mean = np.mean([value for (name, level), value in accuracy_of.items() if level == severity and name != "none"])
        params = {**settings, "severity": severity, "images": len(labels)}
        rows += results.rows({"mean_corrupted_accuracy": mean, "accuracy_drop": accuracy_of[("none", 0)] - mean},
                             split=CORRUPTED, wall_seconds=float("nan"), params=params, **keys)  # fmt: skip
    return rows, saved


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
