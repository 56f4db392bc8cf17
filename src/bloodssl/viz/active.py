"""Figures of notebook 05; each returns a matplotlib Figure (save with ``bloodssl.viz.plots.save``)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from bloodssl.data import SHORT_NAMES
from bloodssl.studies.ssl_active_learning import ARM_NAMES, Plan, expand, main_rows


def arms_by_round(table: pd.DataFrame, plan: Plan, metric: str = "accuracy") -> Figure:
    """Test ``metric`` against human labels for each arm, one panel per starting fraction."""
    rows = main_rows(expand(table), plan).query("split == 'test' and metric == @metric").copy()
    rows["arm"] = rows["arm"].map(ARM_NAMES)
    fractions = sorted(rows["label_fraction"].unique())
    fig, axes = plt.subplots(1, len(fractions), figsize=(6 * len(fractions), 4), sharey=True, squeeze=False)
    for ax, fraction in zip(axes[0], fractions, strict=True):
        part = rows[rows["label_fraction"] == fraction]
        sns.lineplot(part, x="n_labels", y="value", hue="arm", style="arm", markers=True, dashes=False,
                     errorbar="sd", hue_order=list(ARM_NAMES.values()), ax=ax)  # fmt: skip
        ax.set(xlabel="labels given by a person", ylabel=f"test {metric}", title=f"start at {fraction:.0%} labels")
    fig.tight_layout()
    return fig


def learning_curves(table: pd.DataFrame, plan: Plan) -> Figure:
    """Test accuracy of SSL+AL against human labels, one line per query strategy."""
    rows = expand(table)
    rows = rows[(rows["arm"] == "ssl_al") & (rows["split"] == "test") & (rows["metric"] == "accuracy")
                & (rows["budget"] == plan.budget) & (rows["threshold"] == plan.threshold)
                & (rows["label_fraction"] == plan.fractions[0]) & (rows["round"] <= plan.ablation_rounds)]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.lineplot(rows, x="n_labels", y="value", hue="strategy", style="strategy", markers=True, dashes=False,
                 errorbar="sd", ax=ax)  # fmt: skip
    ax.set(xlabel="labels given by a person", ylabel="test accuracy",
           title=f"SSL+AL by query strategy (budget {plan.budget}, threshold {plan.threshold:g})")  # fmt: skip
    ax.legend(ncol=2, fontsize=8)
    fig.tight_layout()
    return fig


def ablation_curves(table: pd.DataFrame, plan: Plan) -> Figure:
    """Final SSL+AL test accuracy against budget (left) and threshold (right)."""
    rows = expand(table)
    rows = rows[(rows["arm"] == "ssl_al") & (rows["split"] == "test") & (rows["metric"] == "accuracy")
                & (rows["round"] == plan.ablation_rounds) & (rows["label_fraction"] == plan.fractions[0])
                & (rows["strategy"] == plan.strategy)]  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, by, fixed in ((axes[0], "budget", "threshold"), (axes[1], "threshold", "budget")):
        part = rows[rows[fixed] == getattr(plan, fixed)].sort_values(by)
        sns.lineplot(part, x=by, y="value", marker="o", errorbar="sd", ax=ax)
        ax.set(xlabel=by, ylabel=f"test accuracy after {plan.ablation_rounds} rounds", title=f"SSL+AL: {by}")
    axes[1].set_xscale("logit")
    fig.tight_layout()
    return fig


def pseudo_labels(table: pd.DataFrame, plan: Plan) -> Figure:
    """Pseudo-labels added per round (left) and their true accuracy (right), by arm."""
    rows = main_rows(expand(table), plan).query("split == 'train' and arm in ['ssl', 'ssl_al'] and round > 0").copy()
    rows["arm"] = rows["arm"].map(ARM_NAMES) + rows["label_fraction"].map(" from {:.0%}".format)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("n_pseudo", "pseudo_accuracy"), strict=True):
        sns.lineplot(rows[rows["metric"] == metric], x="round", y="value", hue="arm", marker="o", errorbar="sd", ax=ax)
        ax.set(xlabel="round", ylabel=metric.replace("_", " "), xticks=range(1, plan.rounds + 1))
    fig.tight_layout()
    return fig


def query_gallery(images: np.ndarray, labels: np.ndarray, queries: Mapping[str, np.ndarray], n: int = 12) -> Figure:
    """The first ``n`` images each strategy queried, one row per strategy, titled by true class."""
    fig, axes = plt.subplots(len(queries), n, figsize=(n * 0.9, len(queries) * 1.1), squeeze=False)
    for row, (name, indices) in zip(axes, queries.items(), strict=True):
        for column, ax in enumerate(row):
            ax.axis("off")
            if column < len(indices):
                ax.imshow(images[indices[column]])
                ax.set_title(SHORT_NAMES[labels[indices[column]]][:10], fontsize=6, pad=2)
        row[0].text(-4, 14, name, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.35)
    return fig


def queried_classes(labels: np.ndarray, queries: Mapping[str, np.ndarray]) -> Figure:
    """How the images each strategy queried spread over the classes (share of its queries)."""
    records = []
    for name, indices in queries.items():
        shares = np.bincount(labels[indices], minlength=len(SHORT_NAMES)) / max(len(indices), 1)
        records += [{"strategy": name, "class": SHORT_NAMES[c], "share": share} for c, share in enumerate(shares)]
    fig, ax = plt.subplots(figsize=(10, 4))
    sns.barplot(pd.DataFrame(records), x="class", y="share", hue="strategy", ax=ax)
    ax.tick_params(axis="x", rotation=20)
    ax.legend(ncol=4, fontsize=7)
    ax.set_title("classes of the images queried in round 1")
    fig.tight_layout()
    return fig
