"""Figures of notebook 06: the label-efficiency curve against the published anchors, the
accuracy/compute frontier at one label count, and the label choices compared."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

#: markers of the published methods, in the order of ``studies.label_efficiency.ANCHORS``
ANCHOR_MARKERS = ("s", "^", "v", "<", "D", "d", "P", "X", "*")
METRIC_TITLES = {"accuracy": "test accuracy (%)", "macro_f1": "test macro-F1 (%)"}


def curve(points: pd.DataFrame, anchors: pd.DataFrame | None = None, metric: str = "accuracy") -> Figure:
    """``metric`` against labelled images (log), a line per ``curve`` with a mean ± std band
    (``studies.label_efficiency.curve``'s points of one source); the ``anchors`` (test
    accuracy only) in grey, a marker per published method, named in a legend of their own."""
    fig, ax = plt.subplots(figsize=(10, 6))
    chosen = points[points["metric"] == metric]
    for line, group in chosen.groupby("curve", sort=True):
        group = group.sort_values("n_labels")
        mean, std = 100 * group["mean"], 100 * group["std"].fillna(0)
        (drawn,) = ax.plot(group["n_labels"], mean, marker="o", label=line)
        ax.fill_between(group["n_labels"], mean - std, mean + std, color=drawn.get_color(), alpha=0.15)
    ours = ax.legend(loc="lower right", fontsize=8, title="ours (best setting on val)")
    if anchors is not None and metric == "accuracy":
        handles = []
        for number, ((source, method), group) in enumerate(anchors.groupby(["source", "method"], sort=False)):
            group = group.sort_values("n_labels")
            first = group.iloc[0]
            pretrained = f", {first['pretrained']}" if first["pretrained"] != "no" else ""
            marker = ANCHOR_MARKERS[number % len(ANCHOR_MARKERS)]
            (drawn,) = ax.plot(group["n_labels"], group["accuracy"], marker=marker, color="dimgrey", linestyle=":",
                               label=f"{method} ({source}, {first['image_size']} px{pretrained})")  # fmt: skip
            handles.append(drawn)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, title="published",
                  title_fontsize=8)  # fmt: skip
        ax.add_artist(ours)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images (log)")
    ax.set_ylabel(METRIC_TITLES.get(metric, metric))
    ax.grid(alpha=0.3, which="both")
    return fig


def frontier(points: pd.DataFrame, n_labels: int) -> Figure:
    """Test accuracy against wall minutes of one run on 2 CPU cores (log) at ``n_labels``
    labels, one point per line of the curve: what each point of accuracy costs."""
    chosen = points[(points["metric"] == "accuracy") & (points["n_labels"] == n_labels)]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.errorbar(chosen["minutes"], 100 * chosen["mean"], yerr=100 * chosen["std"].fillna(0), fmt="o", capsize=3)
    for row in chosen.itertuples(index=False):
        ax.annotate(row.curve, (row.minutes, 100 * row.mean), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("wall minutes of one run on 2 CPU cores (log)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{n_labels:,} labels")
    ax.grid(alpha=0.3, which="both")
    return fig


def selections(table: pd.DataFrame) -> Figure:
    """Test accuracy per label choice (``studies.label_efficiency.selection_table``), a group
    of bars per number of labels and learner, mean with the std as error bars."""
    groups = ["n_labels", "learner"]
    wide = table.pivot_table(index=groups, columns="labels", values="mean", sort=False) * 100
    spread = table.pivot_table(index=groups, columns="labels", values="std", sort=False) * 100
    fig, ax = plt.subplots(figsize=(3 + 2 * len(wide), 4))
    wide.plot.bar(ax=ax, rot=0, yerr=spread.reindex_like(wide).fillna(0), capsize=3)
    ax.set_xticks(range(len(wide)), [f"{learner}\n{n:,} labels" for n, learner in wide.index], fontsize=8)
    ax.set_ylim(max(0, wide.min().min() - 10), 100)
    ax.set_xlabel("")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(title="labels chosen", fontsize=8)
    return fig
