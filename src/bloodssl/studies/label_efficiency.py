"""What notebook 06 runs: the label-efficiency curve, test accuracy against the number of
labelled images for every method, next to the published anchors (its plan per profile).

The curve gathers the final results the other notebooks wrote (``gather``); this notebook adds what none of them runs:
notebook 01's CNN recipe at every label fraction (and at SPARSE's few shots per class), ImageNet transfer
(EfficientNet-Lite0 fine-tuned), the choice of which images to label from nothing (``choose_labels``) and the
distillation of an ensemble of few-label CNNs (``studies.distillation``), on stratified labels and on the chosen ones.
On every line each point is the method, model and setting that validation picks (``curve``), never test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from bloodssl import paths, results
from bloodssl.active.strategies import get_strategy
from bloodssl.core.checkpoints import checkpoint_path
from bloodssl.data import Split
from bloodssl.data.splits import labelled_subset, mask_labels
from bloodssl.methods import embed
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.studies import baseline
from bloodssl.studies.embeddings import PLANS as EMBEDDING_PLANS

STEM = "06_label_efficiency"
#: the notebooks whose results the curve gathers, this one's included
SOURCES = ("01_data_and_baseline", "03_label_propagation", "04_pseudo_labelling", "05_ssl_active_learning", STEM)
OTHER_SOURCES = tuple(stem for stem in SOURCES if stem != STEM)
#: each method, as the results name it, and its line on the curve (others, such as labelled_only or AL
#: without pseudo-labels, are not drawn); notebook 05's "baseline" and "ssl" arms are its loop's supervised
#: CNN and self-training
CURVES = {"supervised": "supervised CNN", "baseline": "supervised CNN", "label_propagation": "graph propagation",
          "label_spreading": "graph propagation", "self_training": "self-training", "ssl": "self-training",
          "fixmatch": "FixMatch", "mean_teacher": "Mean Teacher", "flexmatch": "FlexMatch", "ssl_al": "SSL+AL",
          "transfer": "ImageNet transfer", "distillation": "ensemble distillation"}  # fmt: skip
#: how the images to label are chosen (``choose_labels``)
SELECTIONS = ("stratified", "random", "typiclust")
#: the learners trained on chosen labels, as their ``method`` is named in the results
CHOOSING = ("supervised", "distillation")
#: the published results the curve is drawn against (sources in its ``reference`` column)
ANCHORS = Path(__file__).with_name("label_efficiency_anchors.csv")
METRICS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class LongSchedule:
    """Notebook 01's recipe for ``epochs`` at ``fractions`` (the curve's runs with params ``epochs``), and
    FixMatch from those CNNs at the starts' fractions for ``fixmatch_steps`` (``studies.initialisation``; 0: none)."""

    epochs: int
    fractions: tuple[float, ...]
    fixmatch_steps: int = 0


@dataclass(frozen=True)
class Plan:
    """Notebook 06 at one profile.

    ``fractions``: label fractions of notebook 01's CNN recipe (``cnn``: its plan at the
    profile, whose checkpoints notebooks 01-03 share; smoke's is smaller); ``shots``: labels per class
    (SPARSE's points); ``selection_fractions``: where random and TypiClust labels are
    compared with the stratified ones, TypiClust on notebook 02's SimCLR embeddings
    (``simclr_epochs``); ``transfer_fractions``: where EfficientNet-Lite0 with ImageNet
    weights is fine-tuned (``transfer``: its ``CNNClassifier`` parameters) at each learning rate
    of ``transfer_lrs``; ``distillation_fractions``: where an ensemble of the recipe's CNNs is
    distilled into one (``distillation``: ``EnsembleDistillationCNN`` parameters), on the labels of
    each of ``distillation_selections`` (the stratified ones at every distillation fraction, the
    chosen ones at ``distillation_choice_fractions``, each a selection and a distillation fraction,
    so that round 0 is the label choices' CNN).
    """

    fractions: tuple[float, ...]
    shots: tuple[int, ...]
    cnn: dict
    selection_fractions: tuple[float, ...]
    simclr_epochs: int
    transfer_fractions: tuple[float, ...]
    transfer: dict
    transfer_lrs: tuple[float, ...]
    #: the label fraction of the accuracy/compute frontier
    frontier_fraction: float = 0.05
    #: the CNNs' test-time augmentation (not part of a checkpoint: the shared ones are evaluated with it); eight
    #: dihedral views made the evaluation of a run cost more than its training at the default profile
    tta: str = "none"
    distillation_fractions: tuple[float, ...] = ()
    distillation: dict = field(default_factory=dict)
    distillation_selections: tuple[str, ...] = ("stratified",)
    distillation_choice_fractions: tuple[float, ...] = ()
    #: the recipe's longer schedules (params ``epochs``): at the default profile its 4 epochs of 2,048 images are 64
    #: optimiser steps below 17 % of the labels, far from converged
    long_schedules: tuple[LongSchedule, ...] = ()
    #: how many seeds (None: the profile's)
    n_seeds: int | None = None

    def __post_init__(self):
        epochs = [schedule.epochs for schedule in self.long_schedules]  # one each: its checkpoints are named by them
        if repeated := sorted({e for e in epochs if epochs.count(e) > 1}):
            raise ValueError(f"long schedules repeat the epochs {repeated}: merge the schedules of one length into one")

    def seeds(self, first: int, profile_seeds: int) -> list[int]:
        """``n_seeds`` seeds from ``first`` on (the profile's ``profile_seeds`` where it is None)."""
        return list(range(first, first + (self.n_seeds or profile_seeds)))


def _plan(profile: str, **sizes) -> Plan:
    shared = {"cnn": baseline.PLANS[profile].cnn, "simclr_epochs": EMBEDDING_PLANS[profile].simclr_epochs}
    return Plan(**(shared | sizes))


#: fine-tuning ImageNet weights (at 28 px: Lite0 upsamples nothing, its last map is one pixel), without test-time
#: augmentation; its learning rate is the plan's ``transfer_lrs``
TRANSFER = {"model": "efficientnet_lite0", "tta": "none"}

#: distilling the ensemble (``EnsembleDistillationCNN``): three teachers labelling one view of each image, two
#: unlabelled images per labelled one and the moving average of notebook 04's default FixMatch schedule
DISTILLATION = dict(teachers=3, teacher_tta="none", unlabelled_ratio=2, ema_decay=0.99)

PLANS: dict[str, Plan] = {
    # smoke: every kind of run once, each a few seconds (two epochs of 1,024 images)
    "smoke": _plan("smoke", cnn={"epochs": 2, "min_epoch_samples": 1024}, fractions=(0.25,), shots=(5,),
                   selection_fractions=(0.25,), transfer_fractions=(0.25,), transfer_lrs=(0.03,),
                   transfer={**TRANSFER, "epochs": 1, "min_epoch_samples": 256}, frontier_fraction=0.25,
                   distillation_fractions=(0.25,), distillation=dict(DISTILLATION, teachers=2, steps=10, eval_every=5,
                                                                     labelled_batch=16),
                   distillation_selections=SELECTIONS, distillation_choice_fractions=(0.25,),
                   long_schedules=(LongSchedule(3, (0.25,), fixmatch_steps=10),)),
    # default: the other notebooks' runs are read and their CNNs at 100, 5 and 1 % reused, so what trains here is the
    # CNN at 2 % and on random and TypiClust labels at 1, 2 and 5 % (ten seconds each), and the students of distillation
    # at 1, 2 and 5 % and on the chosen labels at 1 % (a minute and a half each on the AVX-512 machine of 2026-11-30).
    # No 10-50 %: below 17 % the recipe's 4 epochs of 2,048 images are 64 optimiser steps whatever the labels, so a
    # larger subset is seen fewer times and can score lower than a smaller one. No transfer network: fine-tuning
    # EfficientNet-Lite0 trains at a third to a fifth of the CNN's images/s (notebook 07). The recipe for 20 epochs (320
    # steps) at 1, 2 and 5 % measures what a longer schedule buys; at 1 %, the target furthest away, 40 epochs too, and
    # FixMatch from that CNN for 600 steps (notebook 04's 100 steps from the 20-epoch CNN ended below round 0 at every
    # fraction in `git show d65e186:reports/results/06_label_efficiency.csv`; not rerun, for the hour)
    "default": _plan("default", fractions=(0.01, 0.02, 0.05, 1.0), shots=(), selection_fractions=(0.01, 0.02, 0.05),
                     transfer_fractions=(), transfer={**TRANSFER, "epochs": 2, "min_epoch_samples": 2048},
                     transfer_lrs=(0.03,), distillation_fractions=(0.01, 0.02, 0.05),
                     distillation=dict(DISTILLATION, steps=300, eval_every=100), distillation_selections=SELECTIONS,
                     distillation_choice_fractions=(0.01,),
                     long_schedules=(LongSchedule(20, (0.01, 0.02, 0.05)),
                                     LongSchedule(40, (0.01,), fixmatch_steps=600))),
    # full: what the hour cannot hold, on 3 seeds: the recipe (80 epochs) at 1, 2 and 5 %; at 1 % FixMatch from it, from
    # random weights and from notebook 02's 150-epoch SimCLR encoder (`initialisation.PLANS`), and EfficientNet-Lite0
    # fine-tuned for 40 epochs at two learning rates. 10-50 % and the shots would take hours more on two cores
    "full": _plan("full", n_seeds=3, fractions=(0.01, 0.02, 0.05), shots=(), selection_fractions=(),
                  transfer_fractions=(0.01,), transfer={**TRANSFER, "epochs": 40, "min_epoch_samples": 2048},
                  transfer_lrs=(0.1, 0.01), frontier_fraction=0.01),
}  # fmt: skip


def choose_labels(selection: str, budget: int, labels: np.ndarray, embeddings: np.ndarray | None,
                  seed: int) -> np.ndarray:  # fmt: skip
    """Sorted indices of ``budget`` training images to label, from no labels at all.

    ``stratified``: the share ``budget / len(labels)`` of every class (``labelled_subset``: rounded
    per class, at least one each, so a few more or fewer than ``budget``; it needs the labels, so
    it is what a curve assumes rather than what a person can do); ``random``: uniformly
    at random, what a person can do; ``typiclust``: TypiClust's cold start on ``embeddings``
    (self-supervised, so no label is used), the most typical image of each of ``budget`` clusters.
    """
    labels = np.asarray(labels)
    if not 1 <= budget <= len(labels):
        raise ValueError(f"budget must be between 1 and the {len(labels)} training images, got {budget}")
    rng = np.random.default_rng(seed)
    if selection == "stratified":
        return labelled_subset(labels, fraction=budget / len(labels), seed=seed)
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    n_classes = int(labels.max()) + 1
    uniform = np.full((len(labels), n_classes), 1 / n_classes)  # no model yet: every image equally uncertain
    chosen = get_strategy(selection)(uniform, embeddings, np.arange(len(labels)), budget, rng)
    return np.sort(chosen)


def chosen_labels(selection: str, fraction: float, labels: np.ndarray, embeddings: np.ndarray | None,
                  seed: int) -> np.ndarray:  # fmt: skip
    """The training images labelled at ``fraction`` by ``selection``: the curve's stratified subset,
    or as many images as it holds chosen by ``choose_labels``, so every selection labels one count."""
    stratified = labelled_subset(labels, fraction=fraction, seed=seed)
    if selection == "stratified":
        return stratified
    return choose_labels(selection, len(stratified), labels, embeddings, seed)


def fit_on(splits: Mapping[str, Split], labelled: np.ndarray, classifier: CNNClassifier) -> CNNClassifier:
    """``classifier`` trained on the training images ``labelled`` only, its epoch selected on val."""
    train, val = splits["train"], splits["val"]
    return classifier.fit(train.images, mask_labels(train.labels, labelled), eval_set=(val.images, val.labels))


def recipe_cnn(plan: Plan, seed: int, checkpoint: Path, **changes) -> CNNClassifier:
    """Notebook 01's CNN as this notebook trains it (``plan.cnn``, ``plan.tta``, with ``changes``),
    unfitted, under ``checkpoint``: the curve's, the label choices' and distillation's round 0 are
    one recipe, and at one fraction and seed under ``recipe_checkpoint`` one network, trained once."""
    return CNNClassifier(seed=seed, checkpoint=checkpoint, progress=False, tta=plan.tta, **{**plan.cnn, **changes})


def recipe_checkpoint(model: str, fraction: float, seed: int, profile: str) -> Path:
    """Where notebook 01's recipe at ``fraction`` is checkpointed: notebook 01's at 100 %, below it
    beside the few-label CNNs of notebooks 02 and 03 (``embed.few_label_cnn``, the same recipe),
    so that the runs those notebooks made (1 and 5 % at the default profile) cost nothing here."""
    stem = baseline.STEM if fraction == 1.0 else embed.CNN_STEM
    return checkpoint_path(stem, "supervised", model, fraction, seed, profile)


def long_checkpoint(epochs: int, model: str, fraction: float, seed: int, profile: str) -> Path:
    """Where the recipe for ``epochs`` (a ``LongSchedule``'s) at ``fraction`` is checkpointed
    (``curve_runs``' run, FixMatch's round 0 in ``studies.initialisation``)."""
    return checkpoint_path(STEM, f"epochs{epochs}", model, fraction, seed, profile)


def selection_checkpoint(selection: str, model: str, fraction: float, seed: int, profile: str) -> Path:
    """Where notebook 01's recipe on ``selection``'s labels (``chosen_labels``) is checkpointed:
    the curve's own CNN (``recipe_checkpoint``) for the stratified ones."""
    if selection == "stratified":
        return recipe_checkpoint(model, fraction, seed, profile)
    return checkpoint_path(STEM, f"{selection}-labels", model, fraction, seed, profile)


def curve_runs(splits: Mapping[str, Split], plan: Plan, seeds: Sequence[int], *, profile: str,
               class_names: Sequence[str]) -> list[baseline.Run]:  # fmt: skip
    """Notebook 01's CNN at every fraction and shot count of ``plan`` (``recipe_checkpoint``:
    its runs at 100 %, 5 % and 1 % come from notebooks 01-03), for each of ``plan.long_schedules``'
    epochs at its fractions, and the transfer network at ``plan.transfer_fractions``, once per
    learning rate of ``plan.transfer_lrs`` (the curve keeps the one validation picks)."""
    train = splits["train"]
    jobs = [("supervised", f, s, {}) for f in plan.fractions for s in seeds]
    jobs += [("supervised", f, s, {"epochs": schedule.epochs}) for schedule in plan.long_schedules
             for f in schedule.fractions for s in seeds]  # fmt: skip
    jobs += [("supervised", k, s, {"per_class": k}) for k in plan.shots for s in seeds]
    jobs += [("transfer", f, s, {"lr": lr}) for f in plan.transfer_fractions for lr in plan.transfer_lrs for s in seeds]
    runs = []
    for method, size, seed, settings in tqdm(jobs, desc="curve", unit="run"):
        if "per_class" in settings:
            labelled = labelled_subset(train.labels, per_class=size, seed=seed)
            fraction = round(len(labelled) / len(train), 4)
        else:
            labelled, fraction = labelled_subset(train.labels, fraction=size, seed=seed), size
        model = (plan.cnn if method == "supervised" else plan.transfer).get("model", "cnn")
        if "epochs" in settings:
            path = long_checkpoint(settings["epochs"], model, fraction, seed, profile)
        elif settings:
            path = checkpoint_path(STEM, "-".join(f"{k}{v:g}" for k, v in settings.items()), model, fraction, seed,
                                   profile)  # fmt: skip
        else:
            path = recipe_checkpoint(model, fraction, seed, profile)
        changes = {k: v for k, v in settings.items() if k != "per_class"}  # the network's parameters
        untrained = (recipe_cnn(plan, seed, path, **changes) if method == "supervised" else
                     CNNClassifier(seed=seed, checkpoint=path, progress=False, **plan.transfer | changes))  # fmt: skip
        classifier = fit_on(splits, labelled, untrained)
        runs.append(baseline.evaluated(classifier, splits, method=method, fraction=fraction, seed=seed,
                                       class_names=class_names, params=settings))  # fmt: skip
    return runs


def selection_runs(splits: Mapping[str, Split], plan: Plan, seeds: Sequence[int], embeddings: np.ndarray, *,
                   profile: str, class_names: Sequence[str]) -> list[baseline.Run]:  # fmt: skip
    """Notebook 01's CNN on labels chosen at random and by TypiClust (on ``embeddings`` of the
    training images) at each of ``plan.selection_fractions``, as many as the stratified subset
    holds; the stratified runs themselves are ``curve_runs``'."""
    train, model = splits["train"], plan.cnn.get("model", "cnn")
    jobs = [(f, selection, s) for f in plan.selection_fractions for selection in SELECTIONS[1:] for s in seeds]
    runs = []
    for fraction, selection, seed in tqdm(jobs, desc="label choices", unit="run"):
        labelled = chosen_labels(selection, fraction, train.labels, embeddings, seed)
        path = selection_checkpoint(selection, model, fraction, seed, profile)
        classifier = fit_on(splits, labelled, recipe_cnn(plan, seed, path))
        runs.append(baseline.evaluated(classifier, splits, method="supervised", fraction=fraction, seed=seed,
                                       class_names=class_names, params={"labels": selection}))  # fmt: skip
    return runs


def levers(table: pd.DataFrame, fractions: Iterable[float]) -> pd.DataFrame:
    """What each of this notebook's runs at ``fractions`` buys against notebook 01's CNN on
    stratified labels (the curve's run, no setting) and what it costs: test accuracy (mean ±
    std in %), its change in points and the minutes of one run."""
    table = table[table["label_fraction"].isin(list(fractions)) & table["method"].isin([*CHOOSING, "fixmatch"])]
    accuracy = table[(table["split"] == "test") & (table["metric"] == "accuracy")]
    keys = ["label_fraction", "method", "params"]
    minutes = (accuracy.groupby(keys)["wall_seconds"].mean() / 60).rename("minutes").reset_index()
    summary = results.summarize(accuracy, by=keys).merge(minutes, on=keys)
    plain = summary[(summary["method"] == "supervised") & (summary["params"] == "{}")].set_index("label_fraction")
    summary["change (points)"] = (summary["mean"] - summary["label_fraction"].map(plain["mean"])) * 100
    summary["lever"] = [results.display_name(m, p) for m, p in zip(summary["method"], summary["params"], strict=True)]
    summary["test accuracy (%)"] = results.mean_std(summary) if len(summary) else []
    columns = ["label_fraction", "lever", "test accuracy (%)", "change (points)", "minutes", "n"]
    return summary[columns].sort_values(["label_fraction", "change (points)"]).round(2).reset_index(drop=True)


def classes_covered(labels: np.ndarray, chosen: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per selection, how many of the classes its labelled images cover and the fewest and most
    images of one class among them (a cold start that misses a class cannot learn it)."""
    n_classes = int(np.max(labels)) + 1
    rows = []
    for name, indices in chosen.items():
        counts = np.bincount(labels[indices], minlength=n_classes)
        rows.append({"labels": name, "images": len(indices), "classes covered": int((counts > 0).sum()),
                     "fewest per class": int(counts.min()), "most per class": int(counts.max())})  # fmt: skip
    return pd.DataFrame(rows)


def gather(results_dirs: Mapping[str, Path], stems: Iterable[str] = SOURCES,
           read: Callable[[Path], pd.DataFrame] = results.read) -> pd.DataFrame:  # fmt: skip
    """The final val and test ``METRICS`` of every run on the curve (``CURVES``), from each
    ``stems``' results in each of ``results_dirs`` (name -> folder; a missing file is
    skipped), with columns ``curve``, ``source`` and ``stem``. Runs on labels that were not
    stratified (the label-choice comparison) are left out: they are another question."""
    tables = []
    for source, folder in results_dirs.items():
        for stem in stems:
            csv = Path(folder) / f"{stem}.csv"
            if not csv.is_file():
                continue
            table = results.final(read(csv))
            keep = table["method"].isin(CURVES) & table["split"].isin(["val", "test"]) & table["metric"].isin(METRICS)
            keep &= ~table["params"].map(lambda text: "labels" in json.loads(text))
            tables.append(table[keep].assign(curve=table["method"].map(CURVES), source=source, stem=stem))
    if not tables:
        return pd.DataFrame(columns=[*results.COLUMNS, "curve", "source", "stem"])
    return pd.concat(tables, ignore_index=True)


def gather_for(profile: str, dataset: str) -> pd.DataFrame:
    """``gather`` at ``profile``: this notebook's runs (``paths.RESULTS``, where its run writes),
    the other notebooks' as published (``paths.published_results``) and, as source ``full``,
    the full profile's published runs where there are any."""
    tables = [gather({profile: paths.RESULTS}, stems=[STEM]),
              gather({profile: paths.published_results(profile, dataset)}, stems=OTHER_SOURCES)]  # fmt: skip
    if profile != "full":
        tables.append(gather({"full": paths.published_results("full", dataset)}))
    return pd.concat([table for table in tables if len(table)] or tables[:1], ignore_index=True)


#: the columns of ``curve``'s points
POINT_COLUMNS = ["source", "curve", "n_labels", "stem", "method", "model", "params", "label_fraction", "metric", "mean",
                 "std", "n", "minutes"]  # fmt: skip


def curve(gathered: pd.DataFrame) -> pd.DataFrame:
    """One point per source, line and number of labels: the candidate (notebook, method, model,
    settings) with the best mean validation accuracy over the most seeds, and its test
    ``METRICS`` (mean, std, seeds) and mean wall time of a run in minutes."""
    candidates = ["stem", "method", "model", "params"]
    points = []
    for (source, line, n_labels), group in gathered.groupby(["source", "curve", "n_labels"], sort=True):
        accuracy = results.summarize(group[group["metric"] == "accuracy"], by=(*candidates, "split"))
        best = results.best_on_validation(accuracy)
        chosen = group[(group[candidates] == best[candidates]).all(axis=1) & (group["split"] == "test")]
        for metric, rows in chosen.groupby("metric"):
            points.append({"source": source, "curve": line, "n_labels": int(n_labels), **best[candidates].to_dict(),
                           "label_fraction": rows["label_fraction"].iloc[0], "metric": metric,
                           "mean": rows["value"].mean(), "std": rows["value"].std(), "n": len(rows),
                           "minutes": rows["wall_seconds"].mean() / 60})  # fmt: skip
    return pd.DataFrame(points, columns=POINT_COLUMNS)


def curve_table(points: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """``curve``'s points of ``metric`` as a table: a row per line, a column per number of
    labels, ``mean ± std`` in %."""
    chosen = points[points["metric"] == metric].copy()
    chosen["text"] = results.mean_std(chosen) if len(chosen) else []
    wide = chosen.pivot_table(index=["source", "curve"], columns="n_labels", values="text", aggfunc="first")
    wide.columns = [f"{n:,} labels" for n in wide.columns]
    return wide.fillna("").reset_index()


def anchors(path: Path = ANCHORS) -> pd.DataFrame:
    """The published points (``ANCHORS``): method, labelled images, test accuracy (%),
    resolution, pretraining and reference."""
    table = pd.read_csv(path)
    missing = {"source", "method", "n_labels", "accuracy", "image_size", "pretrained", "reference"} - set(table.columns)
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
    return table


def selection_table(runs_table: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per learner (its line on the curve: notebook 01's CNN, the ensemble's
    student), label choice and fraction (mean ± std in %), at the fractions where that learner
    ran on chosen labels: its stratified rows are the curve's own runs (no ``labels`` setting)."""
    table = results.expand_params(runs_table.reset_index(drop=True))
    table = table[table["method"].isin(CHOOSING) & (table["split"] == "test") & (table["metric"] == "accuracy")]
    for other in ("per_class", "start", "epochs"):  # the shots, the self-supervised start, the longer schedule
        table = table[table[other].isna()] if other in table else table
    labels = table["labels"] if "labels" in table else pd.Series(np.nan, index=table.index)
    table = table.assign(labels=labels.fillna("stratified"), learner=table["method"].map(CURVES))
    where = table.loc[table["labels"] != "stratified", ["learner", "label_fraction"]].drop_duplicates()
    summary = results.summarize(table.merge(where), by=("label_fraction", "n_labels", "learner", "labels"))
    summary["mean ± std (%)"] = results.mean_std(summary) if len(summary) else []
    return summary[["label_fraction", "n_labels", "learner", "labels", "mean ± std (%)", "mean", "std", "n"]]
