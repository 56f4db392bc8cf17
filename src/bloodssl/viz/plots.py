"""Figures shared by the notebooks. Each returns a matplotlib Figure; ``save`` writes it
under ``reports/figures/``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from bloodssl import paths
from bloodssl.core.io import atomic_path
from bloodssl.data import SHORT_NAMES, Split


def save(fig: Figure, name: str) -> None:
    """Write ``fig`` to ``reports/figures/<name>.png`` atomically."""
    with atomic_path(paths.FIGURES / f"{name}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def class_distribution(splits: Mapping[str, Split], class_names: Sequence[str] = SHORT_NAMES) -> pd.DataFrame:
    """Images per class and split, as counts and shares (long format)."""
    records = []
    for name, split in splits.items():
        counts = split.class_counts(len(class_names))
        for label, count in enumerate(counts):
            records.append({"split": name, "class": class_names[label], "count": int(count),
                            "share": count / counts.sum()})  # fmt: skip
    return pd.DataFrame(records)


def label_histograms(splits: Mapping[str, Split], class_names: Sequence[str] = SHORT_NAMES) -> Figure:
    """Counts (left) and shares (right) of each class in each split."""
    table = class_distribution(splits, class_names)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
    for ax, value in zip(axes, ("count", "share"), strict=True):
        sns.barplot(table, y="class", x=value, hue="split", ax=ax, orient="h")
        ax.set_title(f"images per class ({value})")
    axes[1].get_legend().remove()
    fig.tight_layout()
    return fig


def example_grid(split: Split, per_class: int = 8, seed: int = 0, class_names: Sequence[str] = SHORT_NAMES) -> Figure:
    """``per_class`` random images of each class, one row per class (grey images in grey)."""
    rng = np.random.default_rng(seed)
    n_classes = len(class_names)
    fig, axes = plt.subplots(n_classes, per_class, figsize=(per_class * 0.9, n_classes * 0.95), squeeze=False)
    grey = split.images.shape[-1] == 1
    for label in range(n_classes):
        pool = np.flatnonzero(split.labels == label)
        chosen = rng.choice(pool, size=min(per_class, len(pool)), replace=False)
        for column, ax in enumerate(axes[label]):
            ax.axis("off")
            if column < len(chosen):
                image = split.images[chosen[column]]
                ax.imshow(image[..., 0] if grey else image, cmap="gray" if grey else None, vmin=0, vmax=255)
        axes[label, 0].text(-3, 14, class_names[label], ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def confusion(
    matrix: np.ndarray, title: str = "confusion matrix (rows: true class)", class_names: Sequence[str] = SHORT_NAMES
) -> Figure:
    """Row-normalised confusion matrix with the counts written in the cells."""
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(shares, annot=matrix, fmt="d", cmap="Blues", vmin=0, vmax=1, cbar_kws={"label": "share of row"},
                xticklabels=class_names, yticklabels=class_names, ax=ax)  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def per_class_scores(per_class: pd.DataFrame) -> Figure:
    """Precision, recall and F1 per class; error bars over the seeds in ``per_class``."""
    long = per_class.melt(id_vars=["class"], value_vars=["precision", "recall", "f1"], var_name="score")
    fig, ax = plt.subplots(figsize=(10, 4))
    sns.barplot(long, x="class", y="value", hue="score", errorbar="sd", ax=ax)
    ax.set_ylim(max(0.0, long["value"].min() - 0.1), 1.0)
    ax.tick_params(axis="x", rotation=20)
    ax.set_title("per-class scores on the test split (mean ± std over seeds)")
    fig.tight_layout()
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping]]) -> Figure:
    """Training loss and validation accuracy per epoch, one line per run."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for label, history in histories.items():
        table = pd.DataFrame(history)
        left.plot(table["epoch"], table["loss"], label=label)
        if "val_accuracy" in table:
            right.plot(table["epoch"], table["val_accuracy"], label=label)
    left.set(xlabel="epoch", ylabel="training loss", title="training loss")
    right.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy (model selection)")
    right.legend()
    fig.tight_layout()
    return fig
