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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from bloodssl import predictions, results
from bloodssl.core.calibration import expected_calibration_error, fit_temperature, reliability, sharpen
from bloodssl.core.evaluate import evaluate
from bloodssl.data import Split, duplicates
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
    (``robust_models``), with each of ``augmentations`` (``ablation_models``) or with a long
    schedule (``long_recipes``: the 98 % target's); the test
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
    #: networks trained for their own ``epochs`` (params ``epochs``): the 98 % target's long schedules
    long_recipes: tuple[Recipe, ...] = ()

    def __post_init__(self) -> None:
        short = [recipe for recipe in self.long_recipes if not recipe.epochs]
        if short:
            raise ValueError(f"long_recipes {short} have no epochs: give each Recipe(model, augment, epochs)")

    def settings(self, recipe: Recipe) -> dict:
        """The result params of ``recipe``: its augmentation, its learning rate where the plan
        changes it and its epochs where they are not the plan's."""
        lr = dict(self.learning_rates).get(recipe.model)
        return {"augment": recipe.augment, **({"lr": lr} if lr is not None else {}),
                **({"epochs": recipe.epochs} if recipe.epochs else {})}  # fmt: skip

    def recipes(self) -> list[Recipe]:
        """Every network the plan trains, on each of its seeds."""
        return [*(Recipe(model) for model in self.train_models), *(Recipe(m, MEDMNISTC) for m in self.robust_models),
                *self.long_recipes,
                *(Recipe(m, augment) for m in self.ablation_models for augment in self.augmentations)]  # fmt: skip

    def keeps_probabilities(self, recipe: Recipe, tta: str, split: str) -> bool:
        """Whether the per-image probabilities of ``recipe`` with ``tta`` on ``split`` are kept (and its
        AUC reported), or its predicted labels only: probabilities where calibration and the AUC read
        them, on the test split without TTA of notebook 01's and the MedMNIST-C recipe; labels for
        validation, TTA and the augmentation ablation, whose tables report accuracy. Float32
        probabilities of every evaluation made the full profile's predictions file 18 MB."""
        return recipe.augment in (CELL, MEDMNISTC) and tta == self.ttas[0] and split == "test"

    def needs_medmnistc(self) -> bool:
        """Whether a recipe trains on ``medmnistc_copy()`` of the training images."""
        return any(recipe.augment == MEDMNISTC for recipe in self.recipes())


EVERY = ("cnn", "small_cnn", "basic_cnn", "cnn_bn_dropout", "cnn_se", "wide_cnn", "inception_cnn", "vgg_cnn",
         "resnet18", "efficientnet_lite0", "efficientnet_lite0_64")  # fmt: skip
#: the architectures the full profile trains: every one but ResNet-18, which trains at ~70 images/s on 2 AVX-512
#: cores (its 3 seeds at 6 epochs alone would take ~55 min; VGG, Inception and EfficientNet-Lite0 at 64 px ~15 each)
TRAINED = tuple(model for model in EVERY if model != "resnet18")

# fmt: off
PLANS: dict[str, Plan] = {
    "smoke": Plan(("cnn", "small_cnn"), ("cnn",), 1, 40, 0.2, "smoke", batch_size=16, severities=(0, 4),
                  robust_models=("cnn",), ablation_models=("cnn",), augmentations=("mixup",),
                  long_recipes=(Recipe("small_cnn", MEDMNISTC, 4),)),
    # default: the CNNs notebook 01 trained (free), every architecture's cost, 300 test images corrupted at the
    # target's severity (motion blur through ImageMagick at 224 px costs ~0.1 s an image, most of the time here)
    "default": Plan(EVERY, ("cnn",), 2, 300, 0.3),  # notebook 01's default seeds
    # full (~4.7 h on a 2-core AVX-512 machine from scratch): the TRAINED architectures, 3 seeds at 6 epochs
    # (default 4), with and without TTA; the two best on validation of those that train at >= 1,000 images/s
    # (cnn_se, cnn; VGG and Inception lead at 6 epochs but train ~5x slower) also with the MedMNIST-C recipe and every
    # other augmentation; for the 98 % target, notebook 01's recipe for 40 epochs on those two (~7 min a seed) and for
    # 20 on the best at 6 epochs, EfficientNet-Lite0 at 64 px (~20 min a seed); 400 test images at every severity
    "full": Plan(EVERY, TRAINED, 3, 400, 3.0, batch_size=256, ttas=("none", "dihedral"), severities=(0, 1, 2, 3, 4),
                 epochs=6, robust_models=("cnn_se", "cnn"), ablation_models=("cnn_se", "cnn"),
                 augmentations=("none", "geometric", "noise", "randaugment", "augmix", "mixup", "cutmix"),
                 # the basic CNN has no normalisation layer: at notebook 01's 0.1 it diverged on 2 of 3 seeds
                 # (validation accuracy 20 and 31 %, the first full run of 2026-11-30)
                 learning_rates=(("basic_cnn", 0.02),),
                 long_recipes=(Recipe("cnn", CELL, 40), Recipe("cnn_se", CELL, 40),
                               Recipe("efficientnet_lite0_64", CELL, 20))),
}
# fmt: on


def run_keys(model: str, splits: Mapping[str, Split], profile: str, **more) -> dict:
    """The results keys (``results.rows``) of a ``model`` network trained on every training image of ``splits``;
    ``more`` adds or overrides keys (``seed``, ``wall_seconds``, ``params``)."""
    return {"method": "supervised", "model": model, "label_fraction": 1.0, "n_labels": len(splits["train"]),
            "profile": profile, **more}  # fmt: skip


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


def kept(y_true: np.ndarray, proba: np.ndarray, split: str, labels_only: bool, **keys) -> predictions.Prediction:
    """What is kept of a network's ``proba`` on ``split``: the probabilities, or with
    ``labels_only`` the predicted labels (``Plan.keeps_probabilities``)."""
    if labels_only:
        return predictions.of_labels(y_true, proba.argmax(axis=1), proba.shape[1], split, **keys)
    return predictions.Prediction(predictions.run_keys(**keys), split, np.asarray(y_true), np.asarray(proba))


def reported(metrics: Mapping[str, float], labels_only: bool) -> dict[str, float]:
    """The ``metrics`` written for a prediction ``kept`` with ``labels_only`` or not (labels give no AUC)."""
    return {name: value for name, value in metrics.items() if not (labels_only and name == "auc")}


def scored(y_true: np.ndarray, proba: np.ndarray, split: str, class_names: Sequence[str], labels_only: bool,
           **run) -> tuple[list[dict], predictions.Prediction]:  # fmt: skip
    """The results rows of ``proba`` on ``split`` (``reported``: no AUC ``labels_only``) and what is
    ``kept`` of it, keyed by ``run`` (``results.rows``' keys)."""
    metrics = reported(evaluate(y_true, proba, class_names).metrics, labels_only)
    return results.rows(metrics, split=split, **run), kept(y_true, proba, split, labels_only, **run)


def accuracy(classifier: CNNClassifier, splits: Mapping[str, Split], plan: Plan, recipe: Recipe, keys: Mapping,
             class_names: Sequence[str]) -> tuple[list[dict], list, dict]:  # fmt: skip
    """Its training images/s, then val and test metrics of ``recipe``'s trained classifier with each
    of ``plan.ttas`` (params: ``plan.settings`` and ``tta``; wall time: its training), their
    per-image predictions (``Plan.keeps_probabilities``) and the probabilities (``{tta: {split: proba}}``)."""
    rows, saved, proba_of = [], [], {}
    for tta in plan.ttas:
        proba_of[tta] = {}
        params = {**plan.settings(recipe), "tta": tta}
        # one training, written beside each evaluation of it so that its results rows share one set of params
        rows += results.rows({"train_images_per_second": classifier.train_images_per_second_}, split="train",
                             params=params, wall_seconds=classifier.fit_seconds_, **keys)  # fmt: skip
        for split in ("val", "test"):
            proba_of[tta][split] = proba = classifier.predict_proba_tta(splits[split].images, tta)
            split_rows, prediction = scored(splits[split].labels, proba, split, class_names,
                                            not plan.keeps_probabilities(recipe, tta, split), params=params,
                                            wall_seconds=classifier.fit_seconds_, **keys)  # fmt: skip
            rows += split_rows
            saved.append(prediction)
    return rows, saved, proba_of


def ensembled(recipe: Recipe, proba_of: Mapping[tuple[Recipe, int], Mapping],
              trained: Mapping[tuple[Recipe, int], CNNClassifier], splits: Mapping[str, Split], plan: Plan,
              keys: Mapping, class_names: Sequence[str]) -> tuple[list[dict], list]:  # fmt: skip
    """``recipe``'s networks of every seed as one model, their probabilities averaged (``accuracy``'s
    ``proba_of``), with each of ``plan.ttas``: val and test metrics (params ``ensemble``: how many;
    seed: the first; wall time: their training together) and predictions; none for a single seed."""
    seeds = sorted(seed for member, seed in proba_of if member == recipe)
    if len(seeds) < 2:
        return [], []
    rows, saved = [], []
    run = {**keys, "seed": seeds[0], "wall_seconds": sum(trained[(recipe, s)].fit_seconds_ for s in seeds)}
    for tta in plan.ttas:
        params = {**plan.settings(recipe), "tta": tta, "ensemble": len(seeds)}
        for split in ("val", "test"):
            proba = np.mean([proba_of[(recipe, seed)][tta][split] for seed in seeds], axis=0)
            labels_only = not plan.keeps_probabilities(recipe, tta, split)
            split_rows, prediction = scored(splits[split].labels, proba, split, class_names, labels_only,
                                            params=params, **run)  # fmt: skip
            rows += split_rows
            saved.append(prediction)
    return rows, saved


def accuracy_change(rows: Sequence[Mapping]) -> list[dict]:
    """Per model and seed trained with both recipes, the MedMNIST-C recipe's clean test accuracy
    without TTA minus notebook 01's recipe's (metric ``accuracy_change``, params ``augment`` and
    ``tta``) at the plan's epochs: what robustness costs on clean cells."""
    table = results.expand_params(results.frame(rows))
    clean = table[(table["split"] == "test") & (table["metric"] == "accuracy") & (table["tta"] == "none")]
    for name in ("epochs", "ensemble"):  # one network at the plan's epochs: a long schedule or an ensemble has no twin
        if name in clean:
            clean = clean[clean[name].isna()]
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
    """Each row's ``Recipe.name`` from its params ``augment`` and ``epochs`` (``results.expand_params``),
    and how many networks it averages (``ensemble``); NaN for a row without ``augment`` (an architecture's cost)."""
    epochs, ensemble = (table[name] if name in table else pd.Series(np.nan, index=table.index)
                        for name in ("epochs", "ensemble"))  # fmt: skip
    names = [
        Recipe(model, augment, None if pd.isna(epoch) else int(epoch)).name
        + ("" if pd.isna(members) else f", ensemble of {int(members)}")
        if isinstance(augment, str)
        else np.nan
        for model, augment, epoch, members in zip(table["model"], table["augment"], epochs, ensemble, strict=True)
    ]
    return pd.Series(names, index=table.index, dtype=object)


def ablation_table(table: pd.DataFrame, models: Sequence[str], severity: int = 3) -> pd.DataFrame:
    """Per model of ``models`` and ``augment`` recipe, mean and std over seeds (``<measure>_std``)
    of: clean test accuracy without TTA (``clean``) and with it (``clean_tta``), mean accuracy
    over the corruptions at ``severity`` (``corrupted``) and training images/s, at the plan's epochs."""
    t = results.expand_params(table[table["model"].isin(models)])
    t = t.assign(**{name: np.nan for name in ("augment", "tta", "severity", "epochs", "ensemble") if name not in t})
    t = t[t["augment"].notna() & t["epochs"].isna() & t["ensemble"].isna()]
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
    """Per architecture trained with notebook 01's recipe (``augment`` cell, no TTA) at the plan's
    epochs, one network (no long schedule, no ensemble): mean val and test accuracy over its
    seeds (test ``std``, ``n`` seeds) beside its cost on this machine (parameters, MFLOP per
    image, training and inference images/s of torch fp32 on random weights), the best on
    validation first; empty without trained architectures."""
    t = results.expand_params(table)
    t = t.assign(**{name: np.nan for name in ("augment", "tta", "batch_size", "epochs", "ensemble") if name not in t})
    plain = t["epochs"].isna() & t["ensemble"].isna()  # the plan's epochs, one network
    scored = t[(t["metric"] == "accuracy") & (t["augment"] == CELL) & (t["tta"] == "none") & plain]
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


def deduplicated(recipe: Recipe, proba: Mapping[str, Mapping[str, np.ndarray]], test: Split, leaked: np.ndarray,
                 plan: Plan, keys: Mapping, class_names: Sequence[str]) -> tuple[list[dict], list]:  # fmt: skip
    """Test metrics of ``recipe``'s network with the plan's last TTA (``proba``: ``accuracy``'s
    ``{tta: {split: proba}}``) without the ``leaked`` images (split ``test_deduplicated``, params
    ``max_distance`` and ``left_out``) and their predictions: a ``predictions.subset`` of the whole
    test split's, stored as row numbers and kept as ``Plan.keeps_probabilities`` keeps that split."""
    tta = plan.ttas[-1]
    labels_only = not plan.keeps_probabilities(recipe, tta, "test")
    params = {**plan.settings(recipe), "tta": tta, "max_distance": plan.max_distance, "left_out": len(leaked)}
    run = {**keys, "params": params}
    rows = np.setdiff1d(np.arange(len(test)), leaked)
    subset = predictions.subset(kept(test.labels, proba[tta]["test"], "test", labels_only, **run), rows, DEDUPLICATED,
                                **run)  # fmt: skip
    metrics = evaluate(subset.y_true, proba[tta]["test"][rows], class_names).metrics
    return (results.rows(reported(metrics, labels_only), split=DEDUPLICATED, wall_seconds=float("nan"), **run),
            [subset])  # fmt: skip


def duplicate_audit(splits: Mapping[str, Split], plan: Plan) -> tuple[pd.DataFrame, np.ndarray]:
    """Every pair of images within and across the splits whose perceptual hashes differ in at
    most ``plan.inspect_distance`` bits (``data.duplicates``; near duplicates are those within
    ``plan.max_distance``), and the test images with a near duplicate in train or val (to leave
    out of a de-duplicated test)."""
    pairs = duplicates.near_duplicates({name: split.images for name, split in splits.items()}, plan.inspect_distance)
    return pairs, duplicates.leaked(pairs[pairs["distance"] <= plan.max_distance], "test")
