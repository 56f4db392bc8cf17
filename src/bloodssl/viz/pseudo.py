"""Figures of notebook 04 (self-training). Each returns a matplotlib Figure; save it with
``bloodssl.viz.plots.save``."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from sklearn.metrics import auc, roc_curve

from bloodssl.data import SHORT_NAMES

ROUND_PANELS = {
    "n_pseudo": "pseudo-labels in the training set",
    "pseudo_accuracy": "accuracy of the pseudo-labels",
    "test_accuracy": "test accuracy",
    "test_macro_f1": "test macro-F1",
}


def rounds(table: pd.DataFrame) -> Figure:
    """Per round and method: pseudo-labels used, how many were right, test accuracy and
    macro-F1; one row of panels per label fraction (mean over seeds)."""
    fractions = sorted(table["label_fraction"].unique())
    fig, axes = plt.subplots(len(fractions), len(ROUND_PANELS), figsize=(4.2 * len(ROUND_PANELS), 3.4 * len(fractions)),
                             squeeze=False)  # fmt: skip
    for row, fraction in zip(axes, fractions, strict=True):
        subset = table[table["label_fraction"] == fraction]
        for ax, (column, title) in zip(row, ROUND_PANELS.items(), strict=True):
            sns.lineplot(subset, x="round", y=column, hue="method", marker="o", errorbar=None, ax=ax,
                         legend=ax is axes[0, -1])  # fmt: skip
            ax.set(title=f"{title} ({fraction:.0%} labels)", ylabel="", xticks=sorted(subset["round"].unique()))
    if axes[0, -1].get_legend() is not None:
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


def class_balance(table: pd.DataFrame, true_shares: np.ndarray) -> Figure:
    """Share of each class in the enriched training labels, round by round, against the
    class shares of the true training labels (one panel per label fraction)."""
    fractions = sorted(table["label_fraction"].unique())
    fig, axes = plt.subplots(1, len(fractions), figsize=(6 * len(fractions), 3.8), squeeze=False, sharey=True)
    for ax, fraction in zip(axes[0], fractions, strict=True):
        subset = table[table["label_fraction"] == fraction]
        counts = np.array(subset["class_counts"].tolist(), dtype=float)
        shares = pd.DataFrame(counts / counts.sum(1, keepdims=True), columns=list(SHORT_NAMES))
        shares["round"] = subset["round"].to_numpy()
        shares = shares.groupby("round").mean()
        shares.loc["truth"] = true_shares
        shares.plot.barh(stacked=True, ax=ax, legend=ax is axes[0, -1], colormap="tab10", width=0.8)
        ax.set(title=f"class shares of the training labels ({fraction:.0%} labels)", xlabel="share", xlim=(0, 1))
        ax.invert_yaxis()
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    fig.tight_layout()
    return fig


def roc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """One-vs-rest ROC curve of every class, one panel per ``title: (y_true, proba)``."""
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 5), squeeze=False)
    for ax, (title, (y_true, proba)) in zip(axes[0], curves.items(), strict=True):
        for label, name in enumerate(SHORT_NAMES):
            fpr, tpr, _ = roc_curve(np.asarray(y_true) == label, proba[:, label])
            ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set(title=title, xlabel="false positive rate", ylabel="true positive rate")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_by_method(summary: pd.DataFrame) -> Figure:
    """Test accuracy (mean ± std over seeds) of each method at each label fraction, from a
    ``results.summarize`` table restricted to ``metric == 'accuracy'``."""
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(summary) + 1.5))
    labels = summary["method"] + " @ " + (summary["label_fraction"] * 100).map("{:g} %".format)
    ax.barh(labels, summary["mean"] * 100, xerr=summary["std"].fillna(0) * 100, color="tab:blue", alpha=0.8)
    for y, value in enumerate(summary["mean"] * 100):
        ax.text(value, y, f" {value:.2f}", va="center", fontsize=8)
    low = max(0.0, summary["mean"].min() * 100 - 5)
    ax.set(xlim=(low, 100), xlabel="test accuracy (%)", title="test accuracy by method (mean ± std over seeds)")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


TRAINING_PANELS = {
    "mask_rate": "share of unlabelled images above the threshold",
    "pseudo_accuracy": "accuracy of those pseudo-labels",
    "val_accuracy": "validation accuracy (averaged weights)",
}


def training_curves(history: pd.DataFrame) -> Figure:
    """FixMatch step by step, one line per method and label fraction (mean and spread over seeds): how
    many unlabelled images pass the threshold, how often their pseudo-label is right, and
    the validation accuracy of the averaged weights."""
    fig, axes = plt.subplots(1, len(TRAINING_PANELS), figsize=(4.6 * len(TRAINING_PANELS), 3.4))
    history = history.assign(run=history["method"] + ", " + history["label_fraction"].map("{:.0%}".format) + " labels")
    for ax, (column, title) in zip(axes, TRAINING_PANELS.items(), strict=True):
        sns.lineplot(history, x="step", y=column, hue="run", errorbar=("pi", 100), ax=ax, legend=ax is axes[-1])
        ax.set(title=title, ylabel="")
    fig.tight_layout()
    return fig


def shared_errors(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """One heatmap per entry of ``tables`` (``bloodssl.core.evaluate.shared_errors``): the share
    of the row method's test errors that the column method makes too."""
    fig, axes = plt.subplots(1, len(tables), figsize=(5.6 * len(tables), 4.6), squeeze=False)
    for ax, (title, table) in zip(axes[0], tables.items(), strict=True):
        sns.heatmap(table, annot=True, fmt=".2f", cmap="Reds", vmin=0, vmax=1, square=True, ax=ax,
                    cbar_kws={"label": "share of the row's errors"})  # fmt: skip
        ax.set(title=title, xlabel="also wrong", ylabel="wrong")
        ax.tick_params(axis="x", rotation=40)
    fig.tight_layout()
    return fig
