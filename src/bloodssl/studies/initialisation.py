"""What notebook 06 measures of a self-supervised start at few labels: notebook 01's CNN
recipe and FixMatch from the backbone of the SimCLR encoder (``CNNClassifier``'s
``init_from``) against the same from random weights, on the same class-stratified labels, and
FixMatch from the curve's CNNs of the longer schedules that have ``fixmatch_steps``
(``label_efficiency.LongSchedule``); and the encoder's embedding against the curve's CNN's
(``probe``).

The random start is the curve's own CNN (``label_efficiency.recipe_checkpoint``: free once
``curve_runs`` ran); FixMatch is notebook 04's at the same profile, so its runs here differ
from that notebook's only in the fraction and the start (at ``full`` it is notebook 04's
default for 600 steps: ``PLANS``), and from a longer schedule in the epochs of round 0 and
the steps (its ``fixmatch_steps``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from bloodssl import results
from bloodssl.core.checkpoints import checkpoint_path
from bloodssl.data import Split
from bloodssl.data.splits import labelled_subset, mask_labels
from bloodssl.methods import embed, propagation
from bloodssl.methods.fixmatch import FixMatchCNN
from bloodssl.methods.simclr import SimCLREncoder
from bloodssl.predictions import Prediction
from bloodssl.studies import baseline, label_efficiency, pseudo_labelling
from bloodssl.studies.embeddings import PLANS as EMBEDDING_PLANS

#: the starts compared: random weights (the curve's CNN) and the SimCLR encoder's backbone
STARTS = ("random", "simclr")


@dataclass(frozen=True)
class Plan:
    """``fractions``: where both starts are measured (and FixMatch from the curve's longer
    schedules that have ``fixmatch_steps``, ``label_efficiency.LongSchedule``); ``fixmatch``: the
    ``FixMatchCNN`` parameters (notebook 04's at the profile, at ``full`` its default ones for
    600 steps; from a longer schedule, its ``fixmatch_steps`` replace ``steps``); ``probe_fractions``:
    where the encoder's embedding is probed against the curve's CNN's (``probe``)."""

    fractions: tuple[float, ...]
    fixmatch: dict = field(default_factory=dict)
    probe_fractions: tuple[float, ...] = ()


PLANS: dict[str, Plan] = {
    "smoke": Plan((0.25,), pseudo_labelling.PLANS["smoke"].fixmatch, probe_fractions=(0.25,)),
    # default: notebook 03 probes this profile's encoder (its labelled_only runs) at 1 and 5 %
    "default": Plan((0.01, 0.02, 0.05), pseudo_labelling.PLANS["default"].fixmatch),
    # full: notebook 04's default FixMatch for the 600 steps of notebook 06's longest default schedule, not its full one
    # (3,000 steps, 7 unlabelled images per labelled one instead of 2, a slower moving average), which would make each
    # of these runs several times longer; the probe at every fraction of the curve (its CNNs are the curve's)
    "full": Plan(
        (0.01,), dict(pseudo_labelling.PLANS["default"].fixmatch, steps=600), probe_fractions=(0.01, 0.02, 0.05)
    ),
}


def start_checkpoint(start: str, model: str, fraction: float, seed: int, profile: str) -> Path:
    """Where the recipe's CNN from ``start`` is checkpointed: the curve's own for random weights."""
    if start == "random":
        return label_efficiency.recipe_checkpoint(model, fraction, seed, profile)
    return checkpoint_path(label_efficiency.STEM, f"{start}-start", model, fraction, seed, profile)


def runs(splits: Mapping[str, Split], curve_plan: label_efficiency.Plan, plan: Plan, seeds: Sequence[int],
         encoder: SimCLREncoder, *, profile: str, class_names: Sequence[str] | None) -> list[baseline.Run]:  # fmt: skip
    """At each of ``plan.fractions`` and seed: the recipe's CNN (``curve_plan``) from ``encoder``'s
    backbone (its checkpoint; the random start's CNN is the curve's run), and FixMatch from each
    start, and from the curve's CNN of each of ``curve_plan.long_schedules`` at those of its
    fractions in ``plan.fractions`` (params ``epochs``), for its ``fixmatch_steps`` (0: no
    FixMatch). A run from the encoder counts the encoder's training in its cost, though
    one encoder serves every fraction and seed."""
    train, val = splits["train"], splits["val"]
    model = curve_plan.cnn.get("model", "cnn")
    if encoder.model != model:
        raise ValueError(f"the encoder is a {encoder.model!r} and the recipe a {model!r}: train the encoder "
                         "with the recipe's model so its backbone fits")  # fmt: skip
    if encoder.checkpoint is None:
        raise ValueError("the encoder has no checkpoint to start the CNNs from: train it with one "
                         "(methods.simclr.train_encoder checkpoints it)")  # fmt: skip
    jobs = [(f, start, s, {}, {}) for f in plan.fractions for start in STARTS for s in seeds]
    for schedule in curve_plan.long_schedules:  # FixMatch from the curve's CNN of each longer schedule with steps
        if not schedule.fixmatch_steps:
            continue
        jobs += [(f, "random", s, {"epochs": schedule.epochs}, {"steps": schedule.fixmatch_steps})
                 for f in plan.fractions if f in schedule.fractions for s in seeds]  # fmt: skip
    out = []
    for fraction, start, seed, cnn_changes, fixmatch_changes in tqdm(jobs, desc="starts", unit="run"):
        given = mask_labels(train.labels, labelled_subset(train.labels, fraction=fraction, seed=seed))
        round0 = (label_efficiency.long_checkpoint(cnn_changes["epochs"], model, fraction, seed, profile)
                  if cnn_changes else start_checkpoint(start, model, fraction, seed, profile))  # fmt: skip
        base = label_efficiency.recipe_cnn(curve_plan, seed, round0, **cnn_changes)
        pretraining = 0.0 if start == "random" else encoder.fit_seconds_
        if start != "random":
            base.set_params(init_from=encoder.checkpoint)
        name = f"fixmatch-{start}-start" + (f"-epochs{cnn_changes['epochs']}" if cnn_changes else "")
        folder = checkpoint_path(label_efficiency.STEM, name, model, fraction, seed, profile)
        method = FixMatchCNN(
            base, checkpoint_dir=folder.with_suffix(""), progress=False, **plan.fixmatch | fixmatch_changes
        )
        method.fit(train.images, given, eval_set=(val.images, val.labels), y_true=train.labels)
        if start != "random":  # FixMatch's round 0 is the CNN from this start: trained once, reported as well
            first = method.estimators_[0]
            out.append(baseline.evaluated(first, splits, method="supervised", fraction=fraction, seed=seed,
                                          class_names=class_names, params={"start": start},
                                          wall_seconds=pretraining + first.fit_seconds_))  # fmt: skip
        out.append(baseline.evaluated(
            method.estimators_[-1], splits, method="fixmatch", fraction=fraction, seed=seed, class_names=class_names,
            params={"start": start, "steps": method.steps, **cnn_changes},
            wall_seconds=pretraining + sum(network.fit_seconds_ for network in method.estimators_),
            train_metrics={"best_step": method.estimators_[-1].best_epoch_,
                           "pseudo_accuracy": method.rounds_[-1].get("pseudo_accuracy", float("nan"))}))  # fmt: skip
    return out


def probe(
    splits: Mapping[str, Split], curve_plan: label_efficiency.Plan, plan: Plan, seeds: Sequence[int],
    encoder: SimCLREncoder, *, profile: str, class_names: Sequence[str],
) -> tuple[list[dict], list[Prediction]]:  # fmt: skip
    """Notebook 03's linear probe (method ``labelled_only``: logistic regression on the labelled
    images' embeddings, PCA as there) of ``encoder`` (model ``simclr``) and of the curve's CNN at
    each of ``plan.probe_fractions`` (model ``cnn``, its own labels): whether the encoder learnt
    more than the few labels teach, the premise of starting from it. The rows of its results, and
    the predicted labels of val and test."""
    if not plan.probe_fractions:  # nothing to probe: skip computing the two embeddings
        return [], []
    embeddings = {"simclr": embed.encoder_embeddings("simclr", encoder, splits, seed=encoder.seed, profile=profile),
                  "cnn": embed.labelled_cnn_embeddings(splits, profile=profile, **curve_plan.cnn)}  # fmt: skip
    kept: list[Prediction] = []
    table, _, _ = propagation.sweep(embeddings, {name: split.labels for name, split in splits.items()},
                                    fractions=plan.probe_fractions, seeds=seeds, profile=profile, methods=(),
                                    n_components=EMBEDDING_PLANS[profile].n_components, class_names=class_names,
                                    kept=kept)  # fmt: skip
    return table.to_dict("records"), kept


def probe_table(table: pd.DataFrame) -> pd.DataFrame:
    """``probe``'s test accuracy in ``table`` per fraction and embedding (mean ± std in %, seeds)."""
    test = table[(table["method"] == "labelled_only") & (table["split"] == "test") & (table["metric"] == "accuracy")]
    summary = results.summarize(test, by=("label_fraction", "model"))
    summary["test accuracy (%)"] = results.mean_std(summary) if len(summary) else []
    return summary[["label_fraction", "model", "test accuracy (%)", "n"]]
