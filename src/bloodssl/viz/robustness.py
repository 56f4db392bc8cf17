"""Figures of notebook 07: accuracy against cost per architecture, reliability diagrams,
accuracy per corruption and severity with an example of each, and near-duplicate pairs."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def accuracy_vs_cost(table: pd.DataFrame) -> Figure:
    """Test accuracy (mean ± std over seeds) against inference images/s (log), one point per
    ``model``; the Pareto front (no other model both faster and more accurate) joined by a line.
    ``table``: columns ``model``, ``mean``, ``std``, ``images_per_second``."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.errorbar(table["images_per_second"], 100 * table["mean"], yerr=100 * table["std"].fillna(0), fmt="o",
                capsize=3)  # fmt: skip
    for row in table.itertuples(index=False):
        ax.annotate(row.model, (row.images_per_second, 100 * row.mean), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)  # fmt: skip
    front = table.sort_values("images_per_second", ascending=False)
    front = front[front["mean"] >= front["mean"].cummax()]
    ax.plot(front["images_per_second"], 100 * front["mean"], color="tab:green", alpha=0.6, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("inference images/s on 2 CPU cores (torch fp32, no TTA)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="lower left")
    return fig


def reliability_diagrams(tables: Mapping[str, pd.DataFrame], eces: Mapping[str, float]) -> Figure:
    """One reliability diagram per named table (``core.calibration.reliability``): accuracy
    against mean confidence per bin, the diagonal being perfect calibration; ECE in the title."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 4), sharey=True, squeeze=False)
    for ax, (name, bins) in zip(axes[0], tables.items(), strict=True):
        filled = bins[bins["count"] > 0]
        ax.bar(filled["low"], filled["accuracy"], width=filled["high"] - filled["low"], align="edge",
               edgecolor="black", alpha=0.7, label="accuracy")  # fmt: skip
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
        ax.set_title(f"{name}: ECE {eces[name]:.3f}")
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(loc="upper left")
    return fig


def corruption_heatmap(table: pd.DataFrame) -> Figure:
    """Accuracy (%) per corruption (rows) and severity (columns); ``table``: columns
    ``corruption``, ``severity`` and ``accuracy``."""
    wide = table.pivot_table(index="corruption", columns="severity", values="accuracy", sort=False) * 100
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(wide) + 1.2))
    image = ax.imshow(wide.to_numpy(), cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(wide.to_numpy()):
        ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(wide.shape[1]), [f"{s} ({s + 1} of 5)" for s in wide.columns], fontsize=8)
    ax.set_yticks(range(len(wide)), wide.index)
    ax.set_xlabel("severity (medmnistc's count from 0)")
    fig.colorbar(image, ax=ax, label="test accuracy (%)")
    return fig


def accuracy_by_severity(table: pd.DataFrame) -> Figure:
    """Mean accuracy over the corruptions (%, mean ± std over seeds) against severity, a panel
    per ``model`` and a line per training ``recipe``, its clean accuracy at the left as
    ``clean``; ``table``: columns ``model``, ``recipe``, ``severity`` (-1 for clean), ``mean``
    and ``std``."""
    models = list(dict.fromkeys(table["model"]))
    columns = min(3, len(models))
    rows = -(-len(models) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows), squeeze=False, sharey=True)
    levels = sorted(table["severity"].unique())
    for ax, model in zip(axes.flat, models, strict=False):
        part = table[table["model"] == model].sort_values("severity")
        for recipe, line in part.groupby("recipe", sort=False):
            ax.errorbar(line["severity"], 100 * line["mean"], yerr=100 * line["std"].fillna(0), marker="o",
                        capsize=3, label=recipe)  # fmt: skip
        ax.set_xticks(levels, ["clean" if s < 0 else f"{s} ({s + 1}/5)" for s in levels], fontsize=8)
        ax.set_title(model)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(models) :]:
        ax.remove()
    for ax in axes[:, 0]:
        ax.set_ylabel("mean test accuracy over corruptions (%)", fontsize=8)
    fig.supxlabel("severity (medmnistc's count from 0)", fontsize=9)
    fig.tight_layout()
    return fig


def augmentation_ablation(table: pd.DataFrame) -> Figure:
    """Per model (a panel each) and augmentation recipe (rows): clean test accuracy without and
    with TTA and the mean accuracy over the corruptions, mean ± std over seeds (%); ``table``:
    ``studies.architectures.ablation_table``."""
    models = list(dict.fromkeys(table["model"]))
    height = 0.35 * table.groupby("model").size().max() + 1.4
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), height), squeeze=False)
    measures = {"clean": "clean, no TTA", "clean_tta": "clean, 8-view TTA", "corrupted": "corrupted (mean)"}
    for ax, model in zip(axes[0], models, strict=True):
        rows = table[table["model"] == model].reset_index(drop=True)
        for offset, (measure, label) in zip((-0.2, 0.0, 0.2), measures.items(), strict=True):
            if rows[measure].notna().any():
                ax.errorbar(100 * rows[measure], rows.index + offset, xerr=100 * rows[f"{measure}_std"].fillna(0),
                            fmt="o", capsize=2, label=label)  # fmt: skip
        ax.set_yticks(rows.index, rows["augment"])
        ax.invert_yaxis()
        ax.set_xlabel("test accuracy (%)")
        ax.set_title(model)
        ax.grid(axis="x", alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def corruption_gallery(examples: Mapping[tuple[str, int], np.ndarray]) -> Figure:
    """The same test cell clean and under every corruption (columns) at each severity (rows);
    ``examples`` maps ``(corruption, severity)`` to an image, the clean one under ``"none"``."""
    names = list(dict.fromkeys(name for name, _ in examples))
    severities = sorted({severity for name, severity in examples if name != "none"})
    fig, axes = plt.subplots(len(severities), len(names), figsize=(1.25 * len(names), 1.45 * len(severities)),
                             squeeze=False)  # fmt: skip
    for i, severity in enumerate(severities):
        for j, name in enumerate(names):
            ax = axes[i][j]
            image = examples.get((name, 0 if name == "none" else severity))
            if image is not None and (name != "none" or i == 0):
                ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.axis("on" if name != "none" or i == 0 else "off")
            if i == 0:
                ax.set_title("clean" if name == "none" else name.replace("_", "\n"), fontsize=7)
            if j == 1:
                ax.set_ylabel(f"severity {severity}", fontsize=7)
    return fig


def duplicate_pairs(pairs: pd.DataFrame, images: Mapping[str, np.ndarray], n: int = 8) -> Figure:
    """The first ``n`` pairs by distance side by side (top: ``split_a``, bottom: ``split_b``)."""
    shown = pairs.sort_values(["distance", "split_a", "index_a"]).head(n)
    fig, axes = plt.subplots(2, max(len(shown), 1), figsize=(1.5 * max(len(shown), 1), 3.4), squeeze=False)
    for j, row in enumerate(shown.itertuples(index=False)):
        for i, (split, index) in enumerate([(row.split_a, row.index_a), (row.split_b, row.index_b)]):
            axes[i][j].imshow(images[split][index].squeeze())
            axes[i][j].set_title(f"{split} {index}" + ("" if i else f"\n{row.distance} bits"), fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
