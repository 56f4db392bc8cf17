"""Figures of notebooks 02 (embeddings and clustering) and 03 (label propagation).
Each returns a matplotlib Figure; ``bloodssl.viz.plots.save`` writes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from bloodssl.data import N_CLASSES, SHORT_NAMES

PALETTE = sns.color_palette("tab10", N_CLASSES)


def ssl_loss(history: Sequence[Mapping]) -> Figure:
    """SimCLR's contrastive loss per epoch, with the throughput on the right axis."""
    table = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(table["epoch"], table["loss"], marker="o", ms=3, label="NT-Xent loss")
    ax.set(xlabel="epoch", ylabel="NT-Xent loss", title="self-supervised training (no labels)")
    speed = ax.twinx()
    speed.plot(table["epoch"], table["images_per_second"], color="grey", ls=":", label="images/s")
    speed.set_ylabel("training images/s", color="grey")
    fig.tight_layout()
    return fig


def explained_variance(curves: Mapping[str, np.ndarray]) -> Figure:
    """Cumulative share of variance over the first principal components, one line per embedding."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ratio in curves.items():
        ax.plot(np.arange(1, len(ratio) + 1), np.cumsum(ratio), label=name)
    ax.set(xlabel="principal components", ylabel="cumulative explained variance", ylim=(0, 1.01),
           title="PCA of the unit-length embeddings (train split)")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    return fig


def maps(coords: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]], y: np.ndarray) -> Figure:
    """Scatter maps coloured by true class: rows are embeddings, columns projections.
    ``coords[embedding, projection]`` is ``(points (n, 2), indices into y)``."""
    rows = list(dict.fromkeys(name for name, _ in coords))
    columns = list(dict.fromkeys(method for _, method in coords))
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(4 * len(columns), 4 * len(rows)), squeeze=False)
    for (name, method), (points, indices) in coords.items():
        ax = axes[rows.index(name), columns.index(method)]
        colours = [PALETTE[c] for c in y[indices]]
        ax.scatter(points[:, 0], points[:, 1], c=colours, s=3, alpha=0.7, linewidths=0)
        ax.set(xticks=[], yticks=[], title=f"{name} · {method} ({len(indices):,} images)")
    handles = [plt.Line2D([], [], marker="o", ls="", color=PALETTE[c], label=SHORT_NAMES[c]) for c in range(N_CLASSES)]
    fig.legend(handles=handles, loc="lower center", ncol=N_CLASSES, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def k_sweep(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """KMeans inertia (left, the elbow) and silhouette (right) against k, per embedding;
    inertia is divided by its value at the smallest k so embeddings share an axis."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for name, table in tables.items():
        left.plot(table["k"], table["inertia"] / table["inertia"].iloc[0], marker="o", label=name)
        right.plot(table["k"], table["silhouette"], marker="o", label=name)
    for ax in (left, right):
        ax.axvline(N_CLASSES, color="grey", ls=":", lw=1)
    left.set(xlabel="k", ylabel="inertia (relative to the smallest k)", title="elbow")
    right.set(xlabel="k", ylabel="silhouette", title="silhouette (the dotted line: 8 classes)")
    right.legend()
    fig.tight_layout()
    return fig


def k_distances(curves: Mapping[str, tuple[np.ndarray, float]], k: int) -> Figure:
    """Sorted k-distance curves with the eps read off each knee."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, (curve, eps)), colour in zip(curves.items(), sns.color_palette(), strict=False):
        ax.plot(curve, color=colour, label=f"{name} (eps = {eps:.3f})")
        ax.axhline(eps, color=colour, ls=":", lw=1)
    ax.set(xlabel="points, sorted", ylabel=f"distance to the {k}-th neighbour", yscale="log",
           title="k-distance curves and DBSCAN's eps at their knees")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    return fig


def contingency(tables: Mapping[str, pd.DataFrame], columns: int = 3) -> Figure:
    """Cluster-versus-class heatmaps (rows: true class; cells: share of the class)."""
    rows = -(-len(tables) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4 * rows), squeeze=False)
    for ax, (title, table) in zip(axes.flat, tables.items(), strict=False):
        shares = table.div(table.sum(axis=1).clip(lower=1), axis=0)
        sns.heatmap(shares, annot=table.shape[1] <= 12, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False,
                    ax=ax, annot_kws={"fontsize": 6})  # fmt: skip
        ax.set(title=title, xlabel="cluster", ylabel="")
    for ax in axes.flat[len(tables) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def metric_bars(table: pd.DataFrame, metrics: Sequence[str] = ("ari", "nmi", "silhouette")) -> Figure:
    """One panel per metric: value per clustering method (x) and embedding (colour)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        sns.barplot(table[table["metric"] == metric], x="method", y="value", hue="model", ax=ax)
        ax.set(title=metric, ylabel=metric, xlabel="")
        if ax is not axes[0, -1]:
            ax.get_legend().remove()
    fig.tight_layout()
    return fig


def accuracy_vs_labels(table: pd.DataFrame, metric: str = "accuracy") -> Figure:
    """Test ``metric`` against the label fraction, per method (mean ± std over seeds),
    one panel per embedding."""
    test = table[(table["split"] == "test") & (table["metric"] == metric)].copy()
    test["labels (%)"] = test["label_fraction"] * 100
    models = list(dict.fromkeys(test["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models, strict=True):
        sns.lineplot(test[test["model"] == model], x="labels (%)", y="value", hue="method", marker="o",
                     errorbar="sd", ax=ax)  # fmt: skip
        ax.set(xscale="log", title=f"{model} embeddings", ylabel=f"test {metric}")
        ax.set_xticks(sorted(test["labels (%)"].unique()), [f"{v:g}" for v in sorted(test["labels (%)"].unique())])
    fig.tight_layout()
    return fig


def propagated_shares(shares: pd.DataFrame) -> Figure:
    """Class shares of the propagated training labels against the true shares, per method
    (mean over seeds), one panel per label fraction."""
    fractions = sorted(shares["label_fraction"].unique())
    fig, axes = plt.subplots(1, len(fractions), figsize=(6 * len(fractions), 4.5), squeeze=False, sharey=True)
    for ax, fraction in zip(axes[0], fractions, strict=True):
        part = shares[shares["label_fraction"] == fraction]
        long = part.groupby(["method", "class"], sort=False)["propagated"].mean().reset_index()
        true = part.groupby("class", sort=False)["true"].first().reset_index()
        long = pd.concat([long.rename(columns={"propagated": "share"}),
                          true.rename(columns={"true": "share"}).assign(method="true")])  # fmt: skip
        sns.barplot(long, x="class", y="share", hue="method", ax=ax)
        ax.set(title=f"{fraction:.0%} labels", xlabel="")
        ax.tick_params(axis="x", rotation=30)
        if ax is not axes[0, -1]:
            ax.get_legend().remove()
    fig.tight_layout()
    return fig
